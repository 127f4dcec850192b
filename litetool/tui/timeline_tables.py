"""The two tables of the timeline screen: generations and restore points.

Row builders turn ``GenerationInfo`` and ``RestorePoint`` values into cells;
the table classes only add their keys (``enter`` to open or restore, ``←``/``→``
to step through the histogram's time slices) and keep the cursor in view when
their height changes.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from litetool.storage import GenerationInfo
from litetool.tui.display import format_bytes, format_seconds, format_time_range, format_time_us
from litetool.tui.restore_points import RestorePoint

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


def point_row(point: RestorePoint, previous_time_us: int | None, snapshot: bool) -> list[object]:
    gap = ""
    if previous_time_us is not None:
        gap = "+" + format_seconds((point.time_us - previous_time_us) / 1e6)
    if point.segment_number is None:
        stored_in = Text("snapshot", style="cyan")
    else:
        stored_in = Text(
            f"segment {point.segment_number} ({format_bytes(point.segment_stored_bytes)})"
        )
        if snapshot:
            stored_in.append(" + snapshot", style="cyan")
    return [
        Text(str(point.txid), justify="right"),
        format_time_us(point.time_us),
        Text(gap, justify="right", style="dim"),
        Text(format_bytes(point.db_size_bytes), justify="right"),
        stored_in,
    ]


class GenerationTable(DataTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Restore points", show=True)
    ]


class RestorePointTable(DataTable):
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
