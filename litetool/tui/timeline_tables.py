"""The two tables of the timeline screen: generations and restore points.

Row builders turn ``GenerationInfo`` and ``RestorePoint`` values into cells
(a pending commit time or size is ``…``); the table classes add their keys
(``enter`` to open or restore, ``←``/``→`` to step through the histogram's
time slices) and keep the cursor in view when their height changes; the
restore point table also fills and redraws a window of points and says which
of its rows are on screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from litetool.storage import GenerationInfo
from litetool.tui.display import format_bytes, format_seconds, format_time_range, format_time_us
from litetool.tui.restore_points import RestorePoint, RestorePoints

GENERATION_COLUMNS = (
    ("generation", "Generation"),
    ("commits", "Commits (UTC)"),
    ("txids", "Txids"),
    ("points", "Points"),
    ("size", "Stored"),
    ("reason", "Reason"),
)
REASON_WIDTH = 32
POINT_COLUMNS = (
    ("txid", "Txid"),
    ("time", "Commit time (UTC)"),
    ("gap", "Since previous"),
    ("db_size", "DB size"),
    ("stored_in", "Stored in"),
)


def generation_row(info: GenerationInfo) -> list[object]:
    return [
        info.generation,
        format_time_range(info.first_commit_time_us, info.last_commit_time_us),
        Text(f"{info.first_txid}..{info.last_txid}", justify="right"),
        Text(str(info.last_txid - info.first_txid + 1), justify="right"),
        Text(format_bytes(info.stored_bytes), justify="right"),
        _shorten(info.reason or "", REASON_WIDTH),
    ]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


PENDING = "…"  # a value inside a segment whose detail is not fetched yet


def point_row(point: RestorePoint, previous: RestorePoint | None, snapshot: bool) -> list[object]:
    """The cells of one restore point (*previous*: the point before it, if any).
    Pending values show as ``…``: they are never estimated."""
    gap = ""
    if previous is not None:
        if point.time_us is None or previous.time_us is None:
            gap = PENDING
        else:
            gap = "+" + format_seconds((point.time_us - previous.time_us) / 1e6)
    if point.segment_number is None:
        stored_in = Text("snapshot", style="cyan")
    else:
        stored_in = Text(
            f"segment {point.segment_number} ({format_bytes(point.segment_stored_bytes)})"
        )
        if snapshot:
            stored_in.append(" + snapshot", style="cyan")
    size = point.db_size_bytes
    return [
        Text(str(point.txid), justify="right"),
        PENDING if point.time_us is None else format_time_us(point.time_us),
        Text(gap, justify="right", style="dim"),
        Text(PENDING if size is None else format_bytes(size), justify="right"),
        stored_in,
    ]


class GenerationTable(DataTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Restore points", show=True)
    ]


class RestorePointTable(DataTable):
    """A window of consecutive restore points (``fill``, ``redraw``). Posts
    ``ViewportMoved`` when the rows on screen change (scrolled or resized), so the
    screen can fetch what those rows need."""

    class ViewportMoved(Message):
        pass

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Restore…", show=True),
        Binding("left,[", "screen.step_bucket(-1)", "◀ Earlier", show=True),
        Binding("right,]", "screen.step_bucket(1)", "Later ▶", show=True),
        Binding("escape", "screen.focus_generations", "Generations", show=True),
    ]

    def on_resize(self) -> None:
        # Keep the picked point in view when the table's height changes (the
        # generations above it load, the terminal is resized).
        if self.row_count:
            self.call_after_refresh(self.move_cursor, row=self.cursor_row, scroll=True)
        self.post_message(self.ViewportMoved())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.post_message(self.ViewportMoved())

    def fill(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Show exactly the points ``first_txid..last_txid``, one row each (key: txid)."""
        self.clear()
        previous = points.point(first_txid - 1) if first_txid > points.first_txid else None
        snapshots = set(points.snapshot_txids)
        for point in points.points(first_txid, last_txid):
            self.add_row(*point_row(point, previous, point.txid in snapshots), key=str(point.txid))
            previous = point

    def redraw(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Redraw the rows of ``first_txid..last_txid`` (shown already) from *points*,
        e.g. once their segment's detail is known."""
        previous = points.point(first_txid - 1) if first_txid > points.first_txid else None
        snapshots = set(points.snapshot_txids)
        for txid in range(first_txid, last_txid + 1):
            point = points.point(txid)
            cells = point_row(point, previous, txid in snapshots)
            for (column, _), cell in zip(POINT_COLUMNS, cells, strict=True):
                self.update_cell(str(txid), column, cell, update_width=True)
            previous = point

    def visible_rows(self) -> range:
        """The row indexes on screen now (rows are one line high; the header stays put)."""
        header = self.header_height if self.show_header else 0
        top = round(self.scroll_y)
        height = max(0, self.scrollable_content_region.height - header)
        return range(top, min(self.row_count, top + height))
