"""Running ``litetool restore`` as a child process, for the restore dialog.

The TUI does not depend on restore internals (it only shares the checks of an
output path with the CLI, ``check_new_output``): it builds the same command
line a user would type (``restore_argv``), runs it with the current Python
(``sys.executable -m litetool restore ...``) and streams its output line by
line. The CLI already renders every failure as one ``error: ...`` line with
the exit code; ``summarize_failure`` picks that line (never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from litetool.errors import LitetoolError
from litetool.restore.output import check_new_output
from litetool.tui.options import ReplicaTarget


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """Restore a replica's generation to exactly one txid into a new file."""

    target: ReplicaTarget
    generation: str
    txid: int
    output: str


def restore_argv(request: RestoreRequest, *, dry_run: bool) -> list[str]:
    """The ``litetool restore`` command line (without the interpreter)."""
    argv = [
        "restore",
        "-o",
        request.output,
        "--generation",
        request.generation,
        "--txid",
        str(request.txid),
    ]
    if dry_run:
        argv.append("--dry-run")
    # The target's own arguments end with the positional DB_PATH|REPLICA_URL.
    argv += list(request.target.restore_args)
    return argv


def command_line(request: RestoreRequest, *, dry_run: bool) -> list[str]:
    """The full child command: this interpreter running ``-m litetool``."""
    return [sys.executable, "-m", "litetool", *restore_argv(request, dry_run=dry_run)]


def check_output_path(text: str, cwd: str | None = None) -> str:
    """The absolute output path, or ValueError with one line: it must not exist
    and its directory must (``litetool.restore.output.check_new_output``)."""
    text = text.strip()
    if not text:
        raise ValueError("enter the path of the database file to create")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = Path(cwd or os.getcwd()) / path
    try:
        check_new_output(path)  # the same checks as `litetool restore -o`
    except LitetoolError as exc:
        raise ValueError(exc.message) from None
    return str(path)


def summarize_failure(lines: list[str], returncode: int) -> str:
    """One line saying why the command failed: its last ``error:`` line if any,
    else its last non-empty line, else the exit status."""
    cleaned = [line.strip() for line in lines if line.strip()]
    for line in reversed(cleaned):
        if line.startswith("error:") or ": error:" in line:
            return line
    if cleaned:
        return cleaned[-1]
    if returncode < 0:
        return f"litetool restore was killed by signal {-returncode}"
    return f"litetool restore failed with exit status {returncode}"


async def run_streaming(
    argv: list[str],
    on_line: Callable[[str, str], None],
    *,
    started: Callable[[asyncio.subprocess.Process], None] | None = None,
) -> int:
    """Run *argv*, calling ``on_line(stream, line)`` for each line of stdout/stderr
    (a carriage return, as in progress bars, also ends a line). Returns the exit
    status; cancelling terminates the child."""
    env = dict(os.environ, NO_COLOR="1")
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    if started is not None:
        started(process)

    async def pump(stream: asyncio.StreamReader, name: str) -> None:
        pending = b""
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            *complete, pending = pending.split(b"\n")
            for line in complete:
                on_line(name, line.decode("utf-8", "replace"))
        if pending:
            on_line(name, pending.decode("utf-8", "replace"))

    assert process.stdout is not None and process.stderr is not None
    try:
        await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
        return await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), timeout=10)
        raise
