"""Table columns that fit the terminal: a full layout, and a compact one for 80 columns.

Each table of the TUI declares its columns once (``Column``): the label of the
full layout, and the label of the compact layout or ``None`` when the column
is left out there. Row builders return every cell by column key; the table
shows the cells of the columns it has (``sync_table``). A screen picks the
layout from its width (``compact_for``) and rebuilds its tables when that
changes (``set_layout``). ``cursor_key`` is the key of the row under a table's
cursor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from textual.widgets import DataTable


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    compact: str | None  # the label in the compact layout; None: not shown there


def compact_for(width: int, full_from: int) -> bool:
    """The compact layout below *full_from* columns (0: the width is not known yet)."""
    return 0 < width < full_from


def set_layout(table: DataTable, columns: Sequence[Column], compact: bool) -> bool:
    """Give *table* the columns of a layout. Returns True when they changed, in which
    case the table was emptied (the caller fills it again)."""
    wanted = [
        (column.key, column.compact if compact else column.label)
        for column in columns
        if not compact or column.compact is not None
    ]
    present = [(column.key.value, str(column.label)) for column in table.ordered_columns]
    if present == wanted:
        return False
    table.clear(columns=True)
    for key, label in wanted:
        table.add_column(label, key=key)
    return True


def sync_table(table: DataTable, rows: Mapping[str, Mapping[str, object]]) -> None:
    """Make *table* hold exactly *rows* (row key -> cells by column key), in that order
    for new rows, updating cells in place so the cursor and scroll position survive."""
    keys = [column.key.value for column in table.ordered_columns]
    present = {row_key.value for row_key in table.rows}
    for gone in present - rows.keys():
        table.remove_row(gone)
    for key, cells in rows.items():
        if key in present:
            for column_key in keys:
                table.update_cell(key, column_key, cells[column_key], update_width=True)
        else:
            table.add_row(*(cells[column_key] for column_key in keys), key=key)


def cursor_key(table: DataTable) -> str | None:
    """The key of the row under *table*'s cursor (None without rows)."""
    if not table.row_count:
        return None
    with contextlib.suppress(Exception):
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    return None
