"""The restore dialog: output path, plan (dry run), confirm, restore, result.

Everything goes through ``litetool restore`` run as a child process in an
async worker (see ``restore_command``); its lines stream into the log here.
The child plans with ``--generation G --txid N`` exactly as a user would, so
a point inside a segment the timeline has not fetched yet is planned and
restored the same way (the command fetches that segment itself).
``Restore`` is enabled only after a successful dry run for the same output
path, so the user has seen the plan before confirming. A failure is shown as
one line; a traceback never reaches the screen.
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
from textual.widgets import Button, Footer, Input, Label, RichLog, Static

from litetool.tui.display import format_bytes, format_time_us
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

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close / cancel")]

    DEFAULT_CSS = """
    RestoreScreen { align: center middle; }
    RestoreScreen #dialog {
        width: 90%; max-width: 110; height: 90%; max-height: 30;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    RestoreScreen #title { text-style: bold; width: 1fr; content-align: center middle; }
    RestoreScreen .field { height: auto; }
    RestoreScreen #output { margin: 0 0; }
    RestoreScreen #buttons { height: 3; }
    RestoreScreen #buttons Button { margin: 0 1 0 0; }
    RestoreScreen #log { height: 1fr; border: round $panel; }
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
        self._output_lines: list[str] = []
        self._in_traceback = False
        self._started_output: str | None = None

    def compose(self) -> ComposeResult:
        point = self.point
        with Vertical(id="dialog"):
            yield Label("Restore", id="title")
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
            yield Input(default_output_path(self.target, point.txid), id="output")
            with Horizontal(id="buttons"):
                yield Button("Plan (dry run)", id="plan", variant="primary")
                yield Button("Restore", id="run", variant="success", disabled=True)
                yield Button("Close", id="close")
            yield RichLog(id="log", wrap=True, max_lines=5000)
            yield Static("", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#output", Input).focus()

    @staticmethod
    def _point_values(point: RestorePoint) -> list[str | tuple[str, str]]:
        """``, committed <time> UTC, database <size>``; a value the timeline has not
        fetched yet is ``…`` (the plan fetches and shows it)."""
        time = "…" if point.time_us is None else format_time_us(point.time_us) + " UTC"
        size = point.db_size_bytes
        values: list[str | tuple[str, str]] = [
            ", committed ",
            (time, "bold"),
            f", database {'…' if size is None else format_bytes(size)}",
        ]
        if point.pending:
            values.append((" (not fetched yet: the plan shows it)", "dim"))
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
        self.running = running
        self.query_one("#plan", Button).disabled = running is not None
        self.query_one("#output", Input).disabled = running is not None
        run = self.query_one("#run", Button)
        run.disabled = running is not None or self.planned_output is None
        self.query_one("#close", Button).label = "Cancel" if running else "Close"

    # -- plan and restore ------------------------------------------------------------------

    @on(Input.Submitted, "#output")
    @on(Button.Pressed, "#plan")
    def action_plan(self) -> None:
        if self.running:
            return
        request = self.request()
        if request is None:
            return
        self.planned_output = None
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
        if self.planned_output is not None and not self.running:
            self.planned_output = None
            self._set_running(None)

    def _start(self, request: RestoreRequest, *, dry_run: bool) -> None:
        log = self.query_one("#log", RichLog)
        log.write(Text("$ litetool " + shlex.join(restore_argv(request, dry_run=dry_run)), "bold"))
        self._output_lines = []
        self._in_traceback = False
        self._started_output = request.output
        self._result("planning…" if dry_run else "restoring…")
        self._set_running("plan" if dry_run else "restore")
        self.run_restore(request, dry_run)

    @work(exclusive=True, group="restore", exit_on_error=False)
    async def run_restore(self, request: RestoreRequest, dry_run: bool) -> None:
        def on_line(stream: str, line: str) -> None:
            self.post_message(RestoreOutput(stream, line))

        try:
            returncode = await run_streaming(command_line(request, dry_run=dry_run), on_line)
        except OSError as exc:
            self.post_message(RestoreFinished(dry_run, -1, f"error: cannot run litetool: {exc}"))
            return
        # The summary is made when this message is handled: only then have the
        # output messages posted before it been handled too.
        self.post_message(RestoreFinished(dry_run, returncode, None))

    @on(RestoreOutput)
    def _restore_output(self, message: RestoreOutput) -> None:
        line = message.line
        if line.startswith(TRACEBACK_START):
            self._in_traceback = True
        if not self._in_traceback:
            self._output_lines.append(line)
            style = "" if message.stream == "stdout" else "dim"
            if line.startswith("error:") or ": error:" in line:
                style = "red"
            self.query_one("#log", RichLog).write(Text(line, style))
        elif line and not line.startswith(" "):
            # the exception line that ends a traceback: keep it for the summary only
            self._output_lines.append(line)

    @on(RestoreFinished)
    def _restore_finished(self, message: RestoreFinished) -> None:
        error = message.error
        if error is None and message.returncode != 0:
            error = summarize_failure(self._output_lines, message.returncode)
        if error is not None:
            self.planned_output = None
            self._set_running(None)
            self._result(error, error=True)
            return
        if message.dry_run:
            self.planned_output = self._started_output
            self._set_running(None)
            self._result("plan above; press Restore to write the database")
            self.query_one("#run", Button).focus()
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
            self.workers.cancel_group(self, "restore")
            self._set_running(None)
            self._result("cancelled (the child was stopped)", error=True)
            return
        self.dismiss(self.restored_path)
