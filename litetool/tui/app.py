"""The litetool Textual app: wires a live source and the screens together.

Sources of live status (see ``TuiOptions``):

- in-process: the engine (``run_daemon``) runs as an async worker on the
  app's own asyncio loop, writing to a ``StatusBoard``; a 0.5 s timer reads
  the board (an in-memory copy, no I/O) and the engine's log lines. ``q``
  sets the engine's stop event and the app exits when the engine has done its
  final capture and sync (``q`` again forces);
- attached: a thread worker polls the daemon's ``/status`` with urllib and
  posts ``StatusPolled`` / ``StatusFailed``;
- none: only the timeline (read-only browsing of replicas).

The live screen never shows more than the source says: while an attached
daemon does not answer, every state is ``unknown`` (until it answers again),
and once the in-process engine has stopped with an error, ``stopped``, with
the error above the tables. That error is also the line ``run_tui`` prints on
leaving (``exit_message``), with the engine's exit code. Each status reading
also tells the timeline which replicas published something, so it refreshes
by itself.

Everything that blocks runs in a worker; results come back as the typed
messages of ``litetool.tui.messages``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.worker import get_current_worker

from litetool.errors import LitetoolError
from litetool.eventlog import LEVELS
from litetool.tui.daemon_client import DaemonUnreachable, StatusView, fetch_status
from litetool.tui.display import format_clock_us
from litetool.tui.help_screen import HelpScreen
from litetool.tui.live_screen import LiveScreen
from litetool.tui.messages import EngineStopped, StatusFailed, StatusPolled
from litetool.tui.options import ReplicaTarget, TuiOptions
from litetool.tui.timeline_screen import TimelineScreen
from litetool.wording import plural

ENGINE_LOG_LINES = 5000
_LOG_LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class LitetoolApp(App[int]):
    """``litetool tui``."""

    TITLE = "litetool"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("l", "show_live", "Live"),
        Binding("t", "show_timeline", "Timeline"),
    ]

    def __init__(self, options: TuiOptions) -> None:
        super().__init__()
        self.options = options
        self.title = options.title
        self.stopping = False
        self.engine_running = False
        self.engine_error: str | None = None
        self._engine_exit_code = 0
        self.exit_message: str | None = None  # printed by run_tui once the screen is gone
        self._unreachable_since_us: int | None = None
        self._engine_stop = asyncio.Event()
        self._engine_log: deque[tuple[float, str, str, dict]] = deque(maxlen=ENGINE_LOG_LINES)
        self._event_seq = 0
        self._poll_stop = threading.Event()
        self._discovered: tuple[str, ...] = ()

    # -- screens ---------------------------------------------------------------------------

    @property
    def live_screen(self) -> LiveScreen | None:
        return self.get_screen("live") if self.options.has_live else None  # type: ignore[return-value]

    @property
    def timeline_screen(self) -> TimelineScreen:
        return self.get_screen("timeline")  # type: ignore[return-value]

    async def on_mount(self) -> None:
        options = self.options
        self.install_screen(TimelineScreen(options.replicas), "timeline")
        if options.has_live:
            self.install_screen(LiveScreen(has_engine_log=options.runs_engine), "live")
            await self.push_screen("live")
        else:
            await self.push_screen("timeline")
        self.sub_title = self._describe_source()
        if options.runs_engine:
            self.engine_running = True
            self.run_engine()
        if options.board is not None:
            self.read_board()
            self.set_interval(options.poll_interval_seconds, self.read_board)
        elif options.attach_addr:
            self.poll_daemon()

    def _describe_source(self) -> str:
        options = self.options
        if options.runs_engine:
            count = len(options.engine_settings.databases)
            return f"in-process engine · {plural(count, 'database')}"
        if options.attach_addr:
            return f"attached to {options.attach_addr}"
        if options.board is not None:
            return "watching a status board"
        if options.replicas:
            return "browsing " + ", ".join(target.url for target in options.replicas)
        return "nothing to show"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("show_live", "show_timeline", "help") and isinstance(
            self.screen, ModalScreen
        ):
            return False
        if action == "show_live":
            return self.options.has_live and self.screen.id != "live"
        if action == "show_timeline":
            return self.screen.id != "timeline"
        return True

    def action_show_live(self) -> None:
        if self.options.has_live and self.screen.id != "live":
            self.switch_screen("live")

    def action_show_timeline(self) -> None:
        if self.screen.id != "timeline":
            self.switch_screen("timeline")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- quitting --------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self.engine_running:
            if self.stopping:
                self.exit_message = "error: forced quit: the engine did not finish its final sync"
                self._leave(1)
                return
            self.stopping = True
            self._engine_stop.set()
            self.sub_title = "stopping: final capture and sync… (q again to force)"
            self.notify("stopping the engine after a final sync…")
            return
        self._leave(self._engine_exit_code)

    def _leave(self, code: int) -> None:
        if code and self.exit_message is None:
            self.exit_message = self.engine_error
        self.exit(code, return_code=code)

    def on_unmount(self) -> None:
        self._poll_stop.set()
        self._engine_stop.set()

    # -- in-process engine -----------------------------------------------------------------

    def _log_from_engine(self, level: str, event: str, **fields: object) -> None:
        # Called from the capture thread and the loop: a deque append is atomic.
        if LEVELS.get(level, 0) >= LEVELS["info"]:
            self._engine_log.append((time.time(), level, event, fields))

    @work(group="engine", exit_on_error=False)
    async def run_engine(self) -> None:
        from litetool.engine.daemon import run_daemon

        error: str | None = None
        try:
            code = await run_daemon(
                self.options.engine_settings,
                log=self._log_from_engine,
                board=self.options.board,
                stop=self._engine_stop,
            )
        except LitetoolError as exc:
            code, error = exc.exit_code, exc.render()
        except Exception as exc:  # no traceback on the screen
            code, error = 70, f"error: internal error: {type(exc).__name__}: {exc}"
        if code and error is None:
            error = _stopped_error(code, self.options.board)
        self.post_message(EngineStopped(code, error))

    @on(EngineStopped)
    def _engine_stopped(self, message: EngineStopped) -> None:
        self.engine_running = False
        self.engine_error = message.error
        self._engine_exit_code = message.exit_code
        self.read_board()
        if message.error is None or self.stopping:
            # A stop we asked for (`q`), or a signal to the process: leave, saying
            # what went wrong if anything did.
            self._leave(message.exit_code)
            return
        self.sub_title = "engine stopped: nothing is replicated (q to quit)"
        live = self.live_screen
        if live is not None:
            live.show_problem(f"engine stopped: {message.error}")

    def read_board(self) -> None:
        board = self.options.board
        live = self.live_screen
        if board is None or live is None or not live.is_mounted or not live.is_attached:
            return  # (not yet, or no longer, on screen)
        events = tuple(board.events_since(self._event_seq))
        if events:
            self._event_seq = events[-1].seq
        view = StatusView(
            databases=board.databases(),
            now_us=int(self.options.clock() * 1e6),
            version=board.version,
            events=events,
        )
        live.show_status(view)
        if self.options.runs_engine and not self.engine_running and self.engine_error:
            live.show_lost("stopped")
        self._discover_replicas(view)
        self.timeline_screen.status_read(view)
        lines = []
        while self._engine_log:
            lines.append(_engine_log_line(*self._engine_log.popleft()))
        if lines:
            live.add_engine_log(lines)

    # -- attached daemon -------------------------------------------------------------------

    @work(thread=True, group="attach", exit_on_error=False)
    def poll_daemon(self) -> None:
        worker = get_current_worker()
        addr = self.options.attach_addr
        assert addr is not None
        since = 0
        started_us = 0
        while not worker.is_cancelled and not self._poll_stop.is_set():
            try:
                view = fetch_status(addr, events_since=since)
                restarted = bool(started_us and view.started_us != started_us)
                if restarted:  # its events are numbered from 1 again
                    since = 0
                    view = fetch_status(addr, events_since=since)
            except DaemonUnreachable as exc:
                self.post_message(StatusFailed(exc.render()))
            else:
                started_us = view.started_us
                if view.events:
                    since = max(since, view.events[-1].seq)
                self.post_message(StatusPolled(view, restarted=restarted))
            self._poll_stop.wait(self.options.poll_interval_seconds)

    @on(StatusPolled)
    def _status_polled(self, message: StatusPolled) -> None:
        live = self.live_screen
        if live is None or not live.is_mounted:
            return
        if self._unreachable_since_us is not None:
            self._unreachable_since_us = None
            self.sub_title = self._describe_source()
        live.show_problem(None)
        if message.restarted:
            live.restarted(message.view.started_us)
        live.show_status(message.view)
        self._discover_replicas(message.view)
        self.timeline_screen.status_read(message.view)

    @on(StatusFailed)
    def _status_failed(self, message: StatusFailed) -> None:
        live = self.live_screen
        if live is None or not live.is_mounted:
            return
        if self._unreachable_since_us is None:
            self._unreachable_since_us = int(self.options.clock() * 1e6)
            self.sub_title = f"{self._describe_source()} · not answering"
        since = format_clock_us(self._unreachable_since_us)
        live.show_problem(f"{message.error} (since {since} UTC; retrying)")
        live.show_lost("unknown")

    def _discover_replicas(self, view: StatusView) -> None:
        """Attached without a config: browse the replicas the daemon reports."""
        if not self.options.replicas_from_status:
            return
        targets = tuple(
            ReplicaTarget(
                name=replica.name,
                url=replica.url,
                restore_args=(replica.url,),
                database=db.path,
            )
            for db in view.databases
            for replica in db.replicas
            if replica.url
        )
        key = tuple(f"{t.database}\0{t.name}\0{t.url}" for t in targets)
        if key != self._discovered:
            self._discovered = key
            self.timeline_screen.set_targets(targets)


def _engine_log_line(time_s: float, level: str, event: str, fields: dict) -> Text:
    line = Text()
    line.append(format_clock_us(int(time_s * 1e6)), style="dim")
    line.append(f" {level:<7} ", style=_LOG_LEVEL_STYLES.get(level, ""))
    line.append(event, style="bold")
    for key, value in fields.items():
        line.append(f" {key}={value}")
    return line


def _stopped_error(code: int, board) -> str:
    """Why the in-process engine returned *code* (as ``litetool daemon`` would exit)."""
    from litetool.engine.daemon import UNREPLICATED_EXIT_CODE

    count = sum(db.unreplicated for db in board.databases()) if board is not None else 0
    if code != UNREPLICATED_EXIT_CODE or not count:
        return f"error: the engine stopped with exit status {code}"  # the config's `exec`
    return (
        f"error: stopped with {plural(count, 'committed transaction')} "
        "that reached no replica "
        "(hint: they stay in the database; the next start replicates them)"
    )


def run_tui(options: TuiOptions) -> int:
    """Run the app in the terminal; the exit code of the session. A session that
    ends with an error prints it (one line on stderr) once the screen is gone."""
    app = LitetoolApp(options)
    result = app.run()
    if app.exit_message:
        print(app.exit_message, file=sys.stderr)
    return int(result or 0)
