"""The live replication screen: databases, replicas and the event log.

The app feeds it ("attributes down"): ``show_status`` with each new status
reading, ``add_events`` with the events since the last reading,
``add_engine_log`` with the in-process engine's log lines, ``show_problem``
when the source fails. The screen itself does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, RichLog, Static

from litetool.engine.status import DatabaseStatus, Event, ReplicaStatus, replica_lag
from litetool.tui.daemon_client import StatusView
from litetool.tui.display import (
    format_age,
    format_bytes,
    format_clock_us,
    format_seconds,
    short_generation,
    short_path,
)

EVENT_LOG_LINES = 2000
ERROR_WIDTH = 44

_STATE_STYLES = {
    "ok": "green",
    "replicating": "green",
    "starting": "yellow",
    "snapshotting": "cyan",
    "backoff": "bold red",
    "detached": "bold red",
    "conflict": "bold red",
    "error": "bold red",
    "stopped": "dim",
}
_EVENT_STYLES = {
    "captured": "dim",
    "synced": "green",
    "snapshot": "cyan",
    "checkpoint": "blue",
    "generation": "magenta",
    "error": "bold red",
    "warning": "yellow",
    "info": "",
}
DATABASE_COLUMNS = (
    ("database", "Database"),
    ("state", "State"),
    ("generation", "Generation"),
    ("txid", "Txid"),
    ("last_commit", "Last commit (UTC)"),
    ("wal", "WAL"),
    ("spool", "Spool"),
    ("checkpoints", "Checkpoints"),
    ("errors", "Errors"),
    ("last_error", "Last error"),
)
REPLICA_COLUMNS = (
    ("database", "Database"),
    ("replica", "Replica"),
    ("state", "State"),
    ("published", "Published txid"),
    ("lag", "Lag (tx)"),
    ("lag_time", "Lag (time)"),
    ("last_sync", "Last sync"),
    ("syncs", "Syncs"),
    ("errors", "Errors"),
    ("last_error", "Last error"),
)


def _state(text: str) -> Text:
    return Text(text, style=_STATE_STYLES.get(text, ""))


def _error(text: str | None) -> Text:
    if not text:
        return Text("")
    line = text.splitlines()[0] if text.splitlines() else text
    if len(line) > ERROR_WIDTH:
        line = line[: ERROR_WIDTH - 1] + "…"
    return Text(line, style="red")


def _count(value: int, *, bad: bool = False) -> Text:
    return Text(str(value), style="bold red" if bad and value else "", justify="right")


def _spool(database: DatabaseStatus) -> Text:
    """The spool's size, FULL at its cap, BRAKING while a slow replica holds writers."""
    size = format_bytes(database.spool_bytes)
    if database.spool_over_cap:
        return Text(size + " FULL", style="bold red", justify="right")
    if database.backpressure:
        return Text(size + " BRAKING", style="bold yellow", justify="right")
    return Text(size, justify="right")


def database_row(database: DatabaseStatus, now_us: int) -> list[object]:
    checkpoints = " ".join(
        f"{mode.lower()} {count}" for mode, count in sorted(database.checkpoints.items())
    )
    last_commit = "-"
    if database.last_commit_us:
        last_commit = (
            f"{format_clock_us(database.last_commit_us)} "
            f"({format_age(database.last_commit_us, now_us)})"
        )
    return [
        short_path(database.path, 32),
        _state(database.state),
        short_generation(database.generation),
        Text(str(database.txid), justify="right"),
        last_commit,
        Text(format_bytes(database.wal_size_bytes), justify="right"),
        _spool(database),
        checkpoints or "0",
        _count(database.capture_errors, bad=True),
        _error(database.last_error),
    ]


def replica_row(database: DatabaseStatus, replica: ReplicaStatus, now_us: int) -> list[object]:
    behind, seconds = replica_lag(database, replica)
    return [
        short_path(database.path, 24),
        replica.name,
        _state(replica.state),
        Text(str(replica.published_txid), justify="right"),
        Text(str(behind), style="yellow" if behind else "", justify="right"),
        Text(format_seconds(seconds), justify="right"),
        format_age(replica.last_sync_us, now_us),
        _count(replica.syncs),
        _count(replica.sync_errors, bad=True),
        _error(replica.last_error),
    ]


def event_line(event: Event) -> Text:
    """``04:38:38.306 synced     app.db  replica  txids 6..6 to replica``."""
    line = Text()
    line.append(format_clock_us(event.time_us), style="dim")
    line.append(" ")
    line.append(f"{event.kind:<10}", style=_EVENT_STYLES.get(event.kind, ""))
    line.append(" ")
    line.append(short_path(event.database, 24), style="bold")
    if event.replica:
        line.append(f" → {event.replica}")
    line.append("  ")
    line.append(event.message, style="red" if event.kind == "error" else "")
    return line


def sync_table(table: DataTable, rows: dict[str, list[object]]) -> None:
    """Make *table* hold exactly *rows* (by key), updating cells in place so the
    cursor and scroll position survive each refresh."""
    keys = [column.key for column in table.ordered_columns]
    present = {row_key.value for row_key in table.rows}
    for gone in present - rows.keys():
        table.remove_row(gone)
    for key, cells in rows.items():
        if key in present:
            for column_key, value in zip(keys, cells, strict=True):
                table.update_cell(key, column_key, value)
        else:
            table.add_row(*cells, key=key)


class LiveScreen(Screen):
    """Replication as it happens."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "toggle_engine_log", "Engine log", show=True),
        Binding("c", "clear_events", "Clear log"),
    ]

    DEFAULT_CSS = """
    LiveScreen { layout: vertical; }
    LiveScreen .section { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
    LiveScreen #problem { height: auto; padding: 0 1; color: $error; display: none; }
    LiveScreen #problem.shown { display: block; }
    LiveScreen #databases { height: auto; max-height: 10; }
    LiveScreen #replicas { height: auto; max-height: 12; }
    LiveScreen #logs { height: 1fr; }
    LiveScreen RichLog { height: 1fr; padding: 0 1; }
    LiveScreen #engine-log { display: none; }
    LiveScreen.engine-log #engine-log { display: block; }
    LiveScreen.engine-log #events { display: none; }
    """

    def __init__(self, *, has_engine_log: bool = False) -> None:
        super().__init__(id="live")
        self.has_engine_log = has_engine_log
        self.last_event_seq = 0
        self._events_missing_said = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="problem")
        yield Label("Databases", classes="section")
        databases = DataTable(id="databases", cursor_type="row", zebra_stripes=True)
        for key, label in DATABASE_COLUMNS:
            databases.add_column(label, key=key)
        yield databases
        yield Label("Replicas", classes="section")
        replicas = DataTable(id="replicas", cursor_type="row", zebra_stripes=True)
        for key, label in REPLICA_COLUMNS:
            replicas.add_column(label, key=key)
        yield replicas
        yield Label("Events", classes="section", id="log-title")
        with Vertical(id="logs"):
            # One line per event, never wrapped: long ones scroll sideways.
            yield RichLog(id="events", max_lines=EVENT_LOG_LINES, wrap=False)
            yield RichLog(id="engine-log", max_lines=EVENT_LOG_LINES, wrap=False)
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_engine_log":
            return self.has_engine_log
        return True

    # -- attributes down ------------------------------------------------------------------

    def show_status(self, view: StatusView) -> None:
        sync_table(
            self.query_one("#databases", DataTable),
            {db.path: database_row(db, view.now_us) for db in view.databases},
        )
        sync_table(
            self.query_one("#replicas", DataTable),
            {
                f"{db.path}\0{replica.name}": replica_row(db, replica, view.now_us)
                for db in view.databases
                for replica in db.replicas
            },
        )
        if view.events is not None:
            self.add_events(view.events)
        elif not self._events_missing_said:
            self._events_missing_said = True
            self.query_one("#events", RichLog).write(
                Text(
                    "this daemon's /status does not report events; "
                    "databases and replicas above are live",
                    style="dim",
                )
            )

    def add_events(self, events: Iterable[Event]) -> None:
        log = self.query_one("#events", RichLog)
        for event in events:
            if event.seq <= self.last_event_seq:
                continue
            if self.last_event_seq and event.seq > self.last_event_seq + 1:
                skipped = event.seq - self.last_event_seq - 1
                log.write(Text(f"… {skipped} events not shown (the view fell behind)", "dim"))
            self.last_event_seq = event.seq
            log.write(event_line(event), shrink=False)

    def add_engine_log(self, lines: Iterable[Text]) -> None:
        log = self.query_one("#engine-log", RichLog)
        for line in lines:
            log.write(line, shrink=False)

    def show_problem(self, text: str | None) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(text or "")
        problem.set_class(bool(text), "shown")

    # -- actions ---------------------------------------------------------------------------

    def action_toggle_engine_log(self) -> None:
        self.toggle_class("engine-log")
        showing = self.has_class("engine-log")
        self.query_one("#log-title", Label).update("Engine log" if showing else "Events")

    def action_clear_events(self) -> None:
        self.query_one("#events", RichLog).clear()
