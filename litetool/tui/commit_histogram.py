"""A histogram of commits over time with the picked restore point marked.

Two rows of eighth-blocks (16 levels), one column per time bucket: the
generation's whole time range, or at a zoom level (``zoom``) one day, hour,
minute or second per column around the picked point. The bucket of the
picked restore point is drawn in the accent colour with a ``▲`` under it;
the last row names the times at both ends and the peak count. Any bucket
with a commit shows at
least one eighth, so a lone transaction is visible. The counts come from
``RestorePoints.histogram``: exact where a segment's detail is known, spread
evenly over its first..last commit time where it is not (see there).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from litetool.tui.display import format_time_us
from litetool.tui.restore_points import RestorePoints
from litetool.tui.zoom import WHOLE, unit_name
from litetool.wording import plural

_BLOCKS = " ▁▂▃▄▅▆▇█"
BAR_ROWS = 2


class CommitHistogram(Widget):
    """Set ``points`` (or None), ``picked_txid`` and the zoom level; it draws itself.

    At the ``WHOLE`` level the columns span the generation. At a unit level (a
    minute per column, ...) they show a window of that many units; the window
    stays put while the picked point is inside it and is centred on the point
    when the point leaves it or the level changes (without going past the
    generation's first or last commit when it is wider than the window)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"commit-histogram--bar", "commit-histogram--picked"}
    DEFAULT_CSS = """
    CommitHistogram { height: 4; padding: 0 1; }
    CommitHistogram > .commit-histogram--bar { color: $primary; }
    CommitHistogram > .commit-histogram--picked { color: $accent; text-style: bold; }
    """

    picked_txid: reactive[int | None] = reactive(None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: RestorePoints | None = None
        self.level = WHOLE
        self.first_bucket: int | None = None  # the window's first bucket at a unit level

    def show(self, points: RestorePoints | None, picked_txid: int | None, level: int) -> None:
        if level != self.level or points is None:
            self.first_bucket = None
        self.points = points
        self.level = level
        self.picked_txid = picked_txid
        self.refresh()

    @property
    def buckets(self) -> int:
        return max(1, self.content_size.width)

    def _window_start(self, points: RestorePoints, width: int) -> int:
        """The first bucket shown at a unit level (moved to keep the picked point in view)."""
        if self.picked_txid is not None:
            picked = points.bucket_of(self.picked_txid, width, self.level)
        else:
            picked = points.last_time_us // self.level
        first = self.first_bucket
        if first is None or not first <= picked < first + width:
            first = picked - width // 2
            # no empty columns past the generation's ends when it is wider than the window
            lowest = points.first_time_us // self.level
            highest = max(lowest, points.last_time_us // self.level - width + 1)
            first = min(max(first, lowest), highest)
        self.first_bucket = first
        return first

    def render(self) -> Text:
        points = self.points
        if points is None:
            return Text("no generation selected", style="dim")
        width = self.buckets
        level = self.level
        first = self._window_start(points, width) if level else 0
        counts = points.histogram(width, level, first)
        peak = max(counts) or 1
        picked = None
        if self.picked_txid is not None:
            picked = points.bucket_of(self.picked_txid, width, level) - first
        levels = BAR_ROWS * 8
        heights = [0 if count == 0 else max(1, round(count / peak * levels)) for count in counts]
        bar_style = self.get_component_rich_style("commit-histogram--bar")
        picked_style = self.get_component_rich_style("commit-histogram--picked")
        text = Text(no_wrap=True, overflow="crop")
        for row in range(BAR_ROWS - 1, -1, -1):
            for bucket, height in enumerate(heights):
                filled = min(8, max(0, height - row * 8))
                text.append(_BLOCKS[filled], style=picked_style if bucket == picked else bar_style)
            text.append("\n")
        marker = [" "] * width
        if picked is not None and 0 <= picked < width:
            marker[picked] = "▲"
        text.append("".join(marker), style=picked_style)
        text.append("\n")
        if level:
            start_us, _ = points.bucket_bounds_us(first, width, level)
            _, end_us = points.bucket_bounds_us(first + width - 1, width, level)
            left = format_time_us(start_us, milliseconds=False)
            right = format_time_us(end_us, milliseconds=False)
            if right[:10] == left[:10]:
                right = right[11:]
            middle = f"peak {peak}/{unit_name(level)}"
        else:
            left = format_time_us(points.first_time_us)
            right = format_time_us(points.last_time_us)
            middle = f"{plural(len(points), 'restore point')}, peak {peak}/column"
        gap = width - len(left) - len(right)
        if gap >= len(middle) + 2:
            pad = gap - len(middle)
            axis = left + " " * (pad // 2) + middle + " " * (pad - pad // 2) + right
        elif gap >= 1:
            axis = left + " " * gap + right
        else:
            axis = left
        text.append(axis, style="dim")
        return text
