"""Builders for the unit tests of the modules that join the engine's parts (the
capture thread, one database's replication, the daemon): one pass of the
capture loop, the board's events, and a ``litetool`` process run from a config
file (the log and the replication itself: ``engine_builders``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from litetool.engine.capture_thread import CaptureThread
from litetool.engine.runtime.status import Event, EventKind, StatusBoard

REPO = Path(__file__).resolve().parents[3]


def one_pass(thread: CaptureThread) -> None:
    """One pass of the capture loop, in this thread: with the stop asked for
    beforehand, ``run`` goes round once (the final capture) and returns."""
    thread.stop()
    thread.run()


def events_of(board: StatusBoard, kind: EventKind, after: int = 0) -> list[Event]:
    return [event for event in board.events_since(after) if event.kind == kind]


def last_seq(board: StatusBoard) -> int:
    events = board.events_since(0)
    return events[-1].seq if events else 0


# -- a litetool process --------------------------------------------------------------------


def toml_config(databases: list[dict]) -> str:
    """A config file holding *databases* (values: str, int, bool; the
    ``replicas`` key: a list of such tables), logging JSON at debug."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = ['[log]\nlevel = "debug"\nformat = "json"\n']
    for database in databases:
        out.append("[[databases]]")
        out += [f"{k} = {value(v)}" for k, v in database.items() if k != "replicas"]
        for replica in database["replicas"]:
            out.append("  [[databases.replicas]]")
            out += [f"  {k} = {value(v)}" for k, v in replica.items()]
        out.append("")
    return "\n".join(out)


def start_litetool(args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    """``python -m litetool ARGS`` in a process of its own, its stderr (the log) to *log*."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "litetool", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )


@contextlib.contextmanager
def litetool_running(args: list[str], log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    """``start_litetool``, and the process killed after if it is still running."""
    proc = start_litetool(args, log, cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    """Until another process made *condition* () true (bounded: a loaded
    machine can take seconds to start Python)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def terminate(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM, and the exit status once the process has stopped."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)
