"""The two tables of the timeline screen: generations and restore points.

Row builders turn ``GenerationInfo`` and ``RestorePoint`` values into cells
by column key (a pending commit time or size is ``…``), in the full or the
compact layout (``columns``); the table classes add their keys (``enter`` to
open or restore, ``←``/``→`` to step through the histogram's time slices)
and keep the cursor in view when their height changes; the restore point
table also fills, extends and redraws a window of points and says which of
its rows are on screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from litetool.storage import GenerationInfo
from litetool.tui.columns import Column
from litetool.tui.display import format_bytes, format_seconds, format_time_range, format_time_us
from litetool.tui.restore_points import RestorePoint, RestorePoints

# Under FULL_LAYOUT_FROM columns the compact layout fits 80: dates without the year,
# a generation's stored size and point count left out (its txids say how many),
# shorter labels.
FULL_LAYOUT_FROM = 100
GENERATION_COLUMNS = (
    Column("generation", "Generation", "Generation"),
    Column("commits", "Commits (UTC)", "Commits (UTC)"),
    Column("txids", "Txids", "Txids"),
    Column("points", "Points", None),
    Column("size", "Stored", None),
    Column("reason", "Reason", "Reason"),
)
REASON_WIDTH = 32
COMPACT_REASON_WIDTH = 16
POINT_COLUMNS = (
    Column("txid", "Txid", "Txid"),
    Column("time", "Commit time (UTC)", "Committed (UTC)"),
    Column("gap", "Since previous", "Gap"),
    Column("db_size", "DB size", "DB size"),
    Column("stored_in", "Stored in", "Stored in"),
)


def generation_row(info: GenerationInfo, *, compact: bool = False) -> dict[str, object]:
    commits = format_time_range(info.first_commit_time_us, info.last_commit_time_us)
    if compact:
        commits = " → ".join(_without_year(part) for part in commits.split(" → "))
    return {
        "generation": info.generation,
        "commits": commits,
        "txids": Text(f"{info.first_txid}..{info.last_txid}", justify="right"),
        "points": Text(str(info.last_txid - info.first_txid + 1), justify="right"),
        "size": Text(format_bytes(info.stored_bytes), justify="right"),
        "reason": _shorten(info.reason or "", COMPACT_REASON_WIDTH if compact else REASON_WIDTH),
    }


def _without_year(text: str) -> str:
    """``11-25 03:07:41`` for ``2025-11-25 03:07:41`` (anything else unchanged)."""
    if len(text) >= 10 and text[:4].isdigit() and text[4] == "-":
        return text[5:]
    return text


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


PENDING = "…"  # a value inside a segment whose detail is not fetched yet


def point_row(
    point: RestorePoint, previous: RestorePoint | None, snapshot: bool, *, compact: bool = False
) -> dict[str, object]:
    """The cells of one restore point by column key (*previous*: the point before it,
    if any). Pending values show as ``…``: they are never estimated."""
    gap = ""
    if previous is not None:
        if point.time_us is None or previous.time_us is None:
            gap = PENDING
        else:
            gap = "+" + format_seconds((point.time_us - previous.time_us) / 1e6)
    if point.segment_number is None:
        stored_in = Text("snapshot", style="cyan")
    else:
        stored = format_bytes(point.segment_stored_bytes)
        name = "seg" if compact else "segment"
        stored_in = Text(f"{name} {point.segment_number} ({stored})")
        if snapshot:
            stored_in.append(" +snap" if compact else " + snapshot", style="cyan")
    size = point.db_size_bytes
    time = PENDING if point.time_us is None else format_time_us(point.time_us)
    if compact:
        time = _without_year(time)
    return {
        "txid": Text(str(point.txid), justify="right"),
        "time": time,
        "gap": Text(gap, justify="right", style="dim"),
        "db_size": Text(PENDING if size is None else format_bytes(size), justify="right"),
        "stored_in": stored_in,
    }


TIME_SLICES = Binding.Group("Earlier/later", compact=True)


class GenerationTable(DataTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Restore points", show=True)
    ]


class RestorePointTable(DataTable):
    """A window of consecutive restore points (``fill``, ``redraw``). Posts
    ``ViewportMoved`` when the rows on screen change (scrolled or resized), so the
    restore point browser can fetch what those rows need."""

    class ViewportMoved(Message):
        pass

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Restore…", show=True),
        Binding("left,[", "screen.step_bucket(-1)", "Earlier", group=TIME_SLICES),
        Binding("right,]", "screen.step_bucket(1)", "Later", group=TIME_SLICES),
        Binding("escape", "screen.focus_generations", "Generations", show=False),
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

    compact = False  # the compact layout's cells (the browser sets it with the columns)

    def fill(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Show exactly the points ``first_txid..last_txid``, one row each (key: txid)."""
        self.clear()
        self.append(points, first_txid, last_txid)

    def append(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Add rows for the points ``first_txid..last_txid`` after the last row."""
        previous = points.point(first_txid - 1) if first_txid > points.first_txid else None
        snapshots = set(points.snapshot_txids)
        columns = [column.key.value for column in self.ordered_columns]
        for point in points.points(first_txid, last_txid):
            cells = point_row(point, previous, point.txid in snapshots, compact=self.compact)
            self.add_row(*(cells[key] for key in columns), key=str(point.txid))
            previous = point

    def redraw(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Redraw the rows of ``first_txid..last_txid`` (shown already) from *points*,
        e.g. once their segment's detail is known."""
        previous = points.point(first_txid - 1) if first_txid > points.first_txid else None
        snapshots = set(points.snapshot_txids)
        columns = [column.key.value for column in self.ordered_columns]
        for txid in range(first_txid, last_txid + 1):
            point = points.point(txid)
            cells = point_row(point, previous, txid in snapshots, compact=self.compact)
            for column in columns:
                self.update_cell(str(txid), column, cells[column], update_width=True)
            previous = point

    def visible_rows(self) -> range:
        """The row indexes on screen now (rows are one line high; the header stays put)."""
        header = self.header_height if self.show_header else 0
        top = round(self.scroll_y)
        height = max(0, self.scrollable_content_region.height - header)
        return range(top, min(self.row_count, top + height))
