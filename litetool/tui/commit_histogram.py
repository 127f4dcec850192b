"""A histogram of commits over time with the picked restore point marked.

Two rows of eighth-blocks (16 levels) over the generation's time range, one
column per time bucket; the bucket of the picked restore point is drawn in
the accent colour with a ``▲`` under it; the last row names the first and
last commit times and the picked point. Any bucket with a commit shows at
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

_BLOCKS = " ▁▂▃▄▅▆▇█"
BAR_ROWS = 2


class CommitHistogram(Widget):
    """Set ``points`` (or None) and ``picked_txid``; it draws itself."""

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

    def show(self, points: RestorePoints | None, picked_txid: int | None) -> None:
        self.points = points
        self.picked_txid = picked_txid
        self.refresh()

    @property
    def buckets(self) -> int:
        return max(1, self.content_size.width)

    def render(self) -> Text:
        points = self.points
        if points is None:
            return Text("no generation selected", style="dim")
        width = self.buckets
        counts = points.histogram(width)
        peak = max(counts) or 1
        picked = points.bucket_of(self.picked_txid, width) if self.picked_txid is not None else None
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
        if picked is not None:
            marker[picked] = "▲"
        text.append("".join(marker), style=picked_style)
        text.append("\n")
        left = format_time_us(points.first_time_us)
        right = format_time_us(points.last_time_us)
        middle = f"{len(points)} restore points, peak {peak}/column"
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
