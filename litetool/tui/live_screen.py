"""The live replication screen: databases, replicas and the event log.

The app feeds it ("attributes down"): ``show_status`` with each new status
reading, ``add_events`` with the events since the last reading,
``add_engine_log`` with the in-process engine's log lines, ``show_problem``
when the source fails, and ``show_lost`` when the source no longer answers or
has stopped: the last reading stays on screen, every state says ``unknown``
(or ``stopped``), and ages and lags, which would freeze, give way to the time
of the last reading. The screen itself does no I/O.

Under ``FULL_LAYOUT_FROM`` columns the tables switch to their compact layout
(``columns``), which fits 80 columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, RichLog, Static

from litetool.engine.runtime.status import DatabaseStatus, Event, ReplicaStatus, replica_lag
from litetool.tui.columns import Column, compact_for, set_layout, sync_table
from litetool.tui.daemon_client import StatusView
from litetool.tui.display import (
    format_age,
    format_bytes,
    format_clock_us,
    format_seconds,
    short_generation,
    short_path,
)
from litetool.tui.footer import KeysFooter
from litetool.wording import plural

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
# The compact layout (under FULL_LAYOUT_FROM columns) keeps what says whether
# replication is healthy: state, position, how long ago, how far behind, errors.
FULL_LAYOUT_FROM = 120
DATABASE_COLUMNS = (
    Column("database", "Database", "Database"),
    Column("state", "State", "State"),
    Column("generation", "Generation", None),
    Column("txid", "Txid", "Txid"),
    Column("last_commit", "Last commit (UTC)", "Last commit"),
    Column("wal", "WAL", None),
    Column("spool", "Spool", "Spool"),
    Column("checkpoints", "Checkpoints", None),
    Column("errors", "Errors", "Err"),
    Column("last_error", "Last error", None),
)
REPLICA_COLUMNS = (
    Column("database", "Database", None),
    Column("replica", "Replica", "Replica"),
    Column("state", "State", "State"),
    Column("published", "Published txid", None),
    Column("lag", "Lag (tx)", "Lag (tx)"),
    Column("lag_time", "Lag (time)", "Lag"),
    Column("last_sync", "Last sync", "Last sync"),
    Column("syncs", "Syncs", None),
    Column("errors", "Errors", "Err"),
    Column("last_error", "Last error", None),
)
COMPACT_PATH_WIDTH = 16
UNKNOWN = "?"


def _state(text: str, lost: str | None = None) -> Text:
    """A state cell; *lost* replaces it when the source no longer answers."""
    if lost is not None:
        return Text(lost, style="bold red")
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


def _when(time_us: int, now_us: int, *, compact: bool, lost: bool, never: str = "-") -> str:
    """When something happened: ``03:08:08.750 (1.25s ago)``, ``1.25s ago`` in the
    compact layout. Without an answer from the source the age would freeze, so
    then only the time of day is shown."""
    if not time_us:
        return never
    if lost:
        return format_clock_us(time_us)
    if compact:
        return format_age(time_us, now_us)
    return f"{format_clock_us(time_us)} ({format_age(time_us, now_us)})"


def database_row(
    database: DatabaseStatus, now_us: int, *, compact: bool = False, lost: str | None = None
) -> dict[str, object]:
    """The cells of a database, by column key. *lost*: the source stopped answering
    (or stopped); it replaces the state, and no age is shown."""
    checkpoints = " ".join(
        f"{mode.lower()} {count}" for mode, count in sorted(database.checkpoints.items())
    )
    return {
        "database": short_path(database.path, COMPACT_PATH_WIDTH if compact else 32),
        "state": _state(database.state, lost),
        "generation": short_generation(database.generation),
        "txid": Text(str(database.txid), justify="right"),
        "last_commit": _when(database.last_commit_us, now_us, compact=compact, lost=bool(lost)),
        "wal": Text(format_bytes(database.wal_size_bytes), justify="right"),
        "spool": _spool(database),
        "checkpoints": checkpoints or "0",
        "errors": _count(database.capture_errors, bad=True),
        "last_error": _error(database.last_error),
    }


def _lag_time(replica: ReplicaStatus, behind: int, seconds: float) -> str:
    """How far behind in commit time; ``all`` while the replica has published nothing
    (``replica_lag`` then counts from the epoch: decades)."""
    if behind and not replica.published_time_us:
        return "all"
    return format_seconds(seconds)


def replica_row(
    database: DatabaseStatus,
    replica: ReplicaStatus,
    now_us: int,
    *,
    compact: bool = False,
    lost: str | None = None,
    several_databases: bool = False,
) -> dict[str, object]:
    """The cells of a replica, by column key (*lost*: see ``database_row``; the lag
    is then unknown: it grows while nobody is looking)."""
    behind, seconds = replica_lag(database, replica)
    name = replica.name
    if compact and several_databases:  # the compact layout has no database column
        name = f"{short_path(database.path.rsplit('/', 1)[-1], 12)} {name}"
    return {
        "database": short_path(database.path, 24),
        "replica": name,
        "state": _state(replica.state, lost),
        "published": Text(str(replica.published_txid), justify="right"),
        "lag": Text(
            UNKNOWN if lost else str(behind),
            style="yellow" if behind and not lost else "",
            justify="right",
        ),
        "lag_time": Text(UNKNOWN if lost else _lag_time(replica, behind, seconds), justify="right"),
        "last_sync": _when(
            replica.last_sync_us, now_us, compact=True, lost=bool(lost), never="never"
        ),
        "syncs": _count(replica.syncs),
        "errors": _count(replica.sync_errors, bad=True),
        "last_error": _error(replica.last_error),
    }


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
        self.view: StatusView | None = None  # the last reading
        self.lost: str | None = None  # what the state columns say when the source is gone
        self.compact = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="problem")
        yield Label("Databases", classes="section", id="databases-title")
        yield DataTable(id="databases", cursor_type="row", zebra_stripes=True)
        yield Label("Replicas", classes="section", id="replicas-title")
        yield DataTable(id="replicas", cursor_type="row", zebra_stripes=True)
        yield Label("Events", classes="section", id="log-title")
        with Vertical(id="logs"):
            # One line per event, never wrapped: long ones scroll sideways.
            yield RichLog(id="events", max_lines=EVENT_LOG_LINES, wrap=False)
            yield RichLog(id="engine-log", max_lines=EVENT_LOG_LINES, wrap=False)
        yield KeysFooter()

    def on_mount(self) -> None:
        self._layout(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        self.compact = compact = compact_for(width, FULL_LAYOUT_FROM)
        changed = set_layout(self.query_one("#databases", DataTable), DATABASE_COLUMNS, compact)
        changed |= set_layout(self.query_one("#replicas", DataTable), REPLICA_COLUMNS, compact)
        if changed:
            self._draw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_engine_log":
            return self.has_engine_log
        return True

    # -- attributes down ------------------------------------------------------------------

    def show_status(self, view: StatusView) -> None:
        """A fresh reading from a source that answers."""
        self.view = view
        self.lost = None
        self._draw()
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

    def show_lost(self, lost: str) -> None:
        """The source no longer answers (``unknown``) or has stopped (``stopped``): the
        last reading stays, with *lost* for every state and no ages or lags."""
        self.lost = lost
        self._draw()

    def _draw(self) -> None:
        view, lost, compact = self.view, self.lost, self.compact
        databases = view.databases if view is not None else ()
        now_us = view.now_us if view is not None else 0
        sync_table(
            self.query_one("#databases", DataTable),
            {db.path: database_row(db, now_us, compact=compact, lost=lost) for db in databases},
        )
        sync_table(
            self.query_one("#replicas", DataTable),
            {
                f"{db.path}\0{replica.name}": replica_row(
                    db,
                    replica,
                    now_us,
                    compact=compact,
                    lost=lost,
                    several_databases=len(databases) > 1,
                )
                for db in databases
                for replica in db.replicas
            },
        )
        as_of = ""
        if lost is not None and view is not None and view.now_us:
            as_of = f" (last read {format_clock_us(view.now_us)} UTC)"
        self.query_one("#databases-title", Label).update("Databases" + as_of)
        self.query_one("#replicas-title", Label).update("Replicas" + as_of)

    def restarted(self, started_us: int) -> None:
        """The daemon was restarted: its events are numbered from 1 again."""
        self.last_event_seq = 0
        self.query_one("#events", RichLog).write(
            Text(f"the daemon restarted at {format_clock_us(started_us)} UTC", style="yellow")
        )

    def add_events(self, events: Iterable[Event]) -> None:
        log = self.query_one("#events", RichLog)
        for event in events:
            if event.seq <= self.last_event_seq:
                continue
            if self.last_event_seq and event.seq > self.last_event_seq + 1:
                skipped = event.seq - self.last_event_seq - 1
                log.write(
                    Text(f"… {plural(skipped, 'event')} not shown (the view fell behind)", "dim")
                )
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
