"""The restore dialog: output path, plan (dry run), confirm, restore, result.

Everything goes through ``litetool restore`` run as a child process in an
async worker (see ``restore_command``); its lines stream into the log here.
The child plans with ``--generation G --txid N`` exactly as a user would, so
a point inside a segment the timeline has not fetched yet is planned and
restored the same way (the command fetches that segment itself).
``Restore`` is enabled only after a successful dry run for the same output
path, so the user has seen the plan before confirming. A failure is shown as
one line; a traceback never reaches the screen.

Where the focus goes: the output path first; ``enter`` there (or ``Plan``)
runs the dry run and, once it succeeds, puts the focus on ``Restore``, so a
second ``enter`` restores (the line under the log says so). A plan that fails
puts the focus back on the path. While the restore runs, the focus is on
``Cancel``. Once a plan has been shown, changing the path plans again by
itself (``REPLAN_DELAY_SECONDS`` after the last key), with the focus left in
the path; ``enter`` then goes to ``Restore``. The dialog fits 80x24: compact
fields and buttons, the log scrolled to the top of the plan.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, RichLog, Static

from litetool.tui.display import format_bytes, format_time_us
from litetool.tui.footer import KeysFooter
from litetool.tui.messages import RestoreFinished, RestoreOutput
from litetool.tui.options import ReplicaTarget
from litetool.tui.restore_command import (
    RestoreRequest,
    check_output_path,
    command_line,
    restore_argv,
    run_streaming,
    summarize_failure,
)
from litetool.tui.restore_points import RestorePoint

TRACEBACK_START = "Traceback (most recent call last):"


def default_output_path(target: ReplicaTarget, txid: int, cwd: str | None = None) -> str:
    """``<cwd>/<db name>-txid<N>.db``, with ``-2``, ``-3``... if that exists."""
    directory = Path(cwd or os.getcwd())
    stem = Path(target.database).stem if target.database else "restored"
    candidate = directory / f"{stem}-txid{txid}.db"
    counter = 2
    while candidate.exists():
        candidate = directory / f"{stem}-txid{txid}-{counter}.db"
        counter += 1
    return str(candidate)


class RestoreScreen(ModalScreen[str | None]):
    """Dismissed with the restored path, or None."""

    REPLAN_DELAY_SECONDS = 0.4

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close / cancel")]

    DEFAULT_CSS = """
    RestoreScreen { align: center middle; }
    RestoreScreen #dialog {
        width: 90%; max-width: 110; height: 90%; max-height: 30;
        border: thick $accent; border-title-align: center; border-title-style: bold;
        background: $surface; padding: 0 1;
    }
    RestoreScreen .field { height: auto; }
    RestoreScreen #output { margin: 0 0 1 0; background: $boost; }
    RestoreScreen #output:focus { background: $panel; }
    RestoreScreen #buttons { height: 1; }
    RestoreScreen #buttons Button { margin: 0 2 0 0; min-width: 10; }
    RestoreScreen #buttons Button:focus { text-style: bold reverse; }
    RestoreScreen #log { height: 1fr; min-height: 4; border: round $panel; }
    RestoreScreen #result { height: auto; }
    RestoreScreen #result.error { color: $error; }
    RestoreScreen #result.success { color: $success; }
    """

    def __init__(self, target: ReplicaTarget, point: RestorePoint) -> None:
        super().__init__(id="restore")
        self.target = target
        self.point = point
        self.planned_output: str | None = None
        self.running: str | None = None  # "plan" | "restore" while the child runs
        self.restored_path: str | None = None
        self.plans = 0  # dry runs started (automatic ones included)
        self._output_lines: list[str] = []
        self._in_traceback = False
        self._started_output: str | None = None
        self._run = 0  # the child whose messages count (older ones were cancelled)
        self._asked = False  # the running plan was asked for (enter, Plan): focus Restore after
        self._plan_shown = False  # a plan was shown: a new path is planned by itself
        self._plan_top = 0  # the log line where the plan's output starts
        self._replan_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        point = self.point
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Restore"
            yield Static(
                Text.assemble(
                    ("Replica     ", "dim"),
                    (self.target.name, "bold"),
                    f"  {self.target.url}\n",
                    ("Generation  ", "dim"),
                    point.generation,
                    "\n",
                    ("Point       ", "dim"),
                    (f"txid {point.txid}", "bold"),
                    *self._point_values(point),
                ),
                classes="field",
                id="summary",
            )
            yield Label("Output file (must not exist); enter: show the plan")
            yield Input(default_output_path(self.target, point.txid), id="output", compact=True)
            with Horizontal(id="buttons"):
                yield Button("Plan (dry run)", id="plan", variant="primary", compact=True)
                yield Button("Restore", id="run", variant="success", disabled=True, compact=True)
                yield Button("Close", id="close", compact=True)
            yield RichLog(id="log", wrap=True, max_lines=5000)
            yield Static("", id="result")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#output", Input).focus()

    @staticmethod
    def _point_values(point: RestorePoint) -> list[str | tuple[str, str]]:
        """``, committed <time> UTC`` and the database size after it, on its own line; a
        value the timeline has not fetched yet is ``…`` (the plan fetches and shows it)."""
        time = "…" if point.time_us is None else format_time_us(point.time_us) + " UTC"
        size = point.db_size_bytes
        values: list[str | tuple[str, str]] = [", committed ", (time, "bold")]
        if point.pending:
            values.append((" (not fetched yet: the plan shows it)", "dim"))
        values += [
            ("\nDatabase    ", "dim"),
            f"{'…' if size is None else format_bytes(size)} after it",
        ]
        return values

    # -- the request -----------------------------------------------------------------------

    def request(self) -> RestoreRequest | None:
        """The request for the typed output path, or None (and say why)."""
        try:
            output = check_output_path(self.query_one("#output", Input).value)
        except ValueError as exc:
            self._result(f"error: {exc}", error=True)
            return None
        return RestoreRequest(self.target, self.point.generation, self.point.txid, output)

    def _result(self, text: str, *, error: bool = False, success: bool = False) -> None:
        result = self.query_one("#result", Static)
        result.update(text)
        result.set_class(error, "error")
        result.set_class(success, "success")

    def _set_running(self, running: str | None) -> None:
        """Enable what can be used now: while a plan runs, the path stays editable (a new
        path plans again); while the restore runs, only Cancel."""
        self.running = running
        restoring = running == "restore"
        self.query_one("#plan", Button).disabled = restoring
        self.query_one("#output", Input).disabled = restoring
        run = self.query_one("#run", Button)
        run.disabled = running is not None or self.planned_output is None
        self.query_one("#close", Button).label = "Cancel" if running else "Close"

    # -- plan and restore ------------------------------------------------------------------

    @on(Input.Submitted, "#output")
    def _output_submitted(self) -> None:
        if self.running is None and self.planned_output is not None:
            try:
                current = check_output_path(self.query_one("#output", Input).value)
            except ValueError:
                current = None
            if current == self.planned_output:
                self.query_one("#run", Button).focus()  # planned already: enter again restores
                return
        self.action_plan()

    @on(Button.Pressed, "#plan")
    def action_plan(self) -> None:
        if self.running == "restore":
            return
        self._stop_replan()
        self._plan(asked=True)

    def _plan(self, *, asked: bool) -> None:
        request = self.request()
        if request is None:
            self.planned_output = None
            self._set_running(None)
            return
        self.planned_output = None
        self._asked = asked
        self._start(request, dry_run=True)

    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        if self.running:
            return
        request = self.request()
        if request is None:
            return
        if request.output != self.planned_output:
            self.planned_output = None
            self._set_running(None)
            self._result("the output path changed: show the plan again first", error=True)
            return
        self._start(request, dry_run=False)

    @on(Input.Changed, "#output")
    def _output_changed(self, event: Input.Changed) -> None:
        if self.running == "restore" or self.restored_path is not None:
            return
        if self.planned_output is not None or self.running == "plan":
            self.planned_output = None
            if self.running == "plan":  # for the old path: stop it
                self._run += 1
                self.workers.cancel_group(self, "restore")
            self._set_running(None)
        if self._plan_shown:
            self._result("the output path changed: planning again…")
            self._stop_replan()
            self._replan_timer = self.set_timer(self.REPLAN_DELAY_SECONDS, self._replan)

    def _stop_replan(self) -> None:
        if self._replan_timer is not None:
            self._replan_timer.stop()
            self._replan_timer = None

    def _replan(self) -> None:
        self._replan_timer = None
        if self.running is None and self.restored_path is None:
            self._plan(asked=False)

    def _start(self, request: RestoreRequest, *, dry_run: bool) -> None:
        log = self.query_one("#log", RichLog)
        if dry_run:
            log.clear()  # the log shows the plan for the path above, and nothing older
            self.plans += 1
        command = "$ litetool " + shlex.join(restore_argv(request, dry_run=dry_run))
        log.write(Text(command, "bold"), scroll_end=not dry_run)
        self._plan_top = len(log.lines)
        self._output_lines = []
        self._in_traceback = False
        self._started_output = request.output
        self._result("planning…" if dry_run else "restoring…")
        self._run += 1
        self._set_running("plan" if dry_run else "restore")
        if not dry_run:
            self.query_one("#close", Button).focus()  # enter or esc: cancel
        self.run_restore(request, dry_run, self._run)

    @work(exclusive=True, group="restore", exit_on_error=False)
    async def run_restore(self, request: RestoreRequest, dry_run: bool, run: int) -> None:
        def on_line(stream: str, line: str) -> None:
            self.post_message(RestoreOutput(stream, line, run))

        try:
            returncode = await run_streaming(command_line(request, dry_run=dry_run), on_line)
        except OSError as exc:
            error = f"error: cannot run litetool: {exc}"
            self.post_message(RestoreFinished(dry_run, -1, error, run))
            return
        # The summary is made when this message is handled: only then have the
        # output messages posted before it been handled too.
        self.post_message(RestoreFinished(dry_run, returncode, None, run))

    @on(RestoreOutput)
    def _restore_output(self, message: RestoreOutput) -> None:
        if message.run != self._run:
            return  # from a plan for a path no longer typed
        line = message.line
        if line.startswith(TRACEBACK_START):
            self._in_traceback = True
        if not self._in_traceback:
            self._output_lines.append(line)
            style = "" if message.stream == "stdout" else "dim"
            if line.startswith("error:") or ": error:" in line:
                style = "red"
            # A plan stays at its top (scrolled there once it is complete); a restore
            # follows its progress.
            log = self.query_one("#log", RichLog)
            log.write(Text(line, style), scroll_end=self.running == "restore")
        elif line and not line.startswith(" "):
            # the exception line that ends a traceback: keep it for the summary only
            self._output_lines.append(line)

    @on(RestoreFinished)
    def _restore_finished(self, message: RestoreFinished) -> None:
        if message.run != self._run:
            return
        error = message.error
        if error is None and message.returncode != 0:
            error = summarize_failure(self._output_lines, message.returncode)
        if error is not None:
            self.planned_output = None
            self._set_running(None)
            self._result(error, error=True)
            self.query_one("#output", Input).focus()  # the path is what to change
            return
        if message.dry_run:
            self.planned_output = self._started_output
            self._plan_shown = True
            self._set_running(None)
            log = self.query_one("#log", RichLog)
            log.scroll_to(y=self._plan_top, animate=False)  # the plan's first lines
            if self._asked:
                self._result("plan above; enter: Restore writes it (esc: close)")
                self.query_one("#run", Button).focus()
            else:
                self._result("plan above, for the new path; enter: go to Restore")
            return
        self.restored_path = self.planned_output
        self.planned_output = None
        self._set_running(None)
        self.query_one("#plan", Button).disabled = True
        self.query_one("#output", Input).disabled = True
        self._result(
            f"restored txid {self.point.txid} of {self.point.generation} to {self.restored_path}",
            success=True,
        )
        self.query_one("#close", Button).focus()

    # -- closing ---------------------------------------------------------------------------

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        if self.running:
            self._run += 1
            self.workers.cancel_group(self, "restore")
            self._set_running(None)
            self._result("cancelled (the child was stopped)", error=True)
            self.query_one("#output", Input).focus()
            return
        self.dismiss(self.restored_path)
