"""Running a replication tool as a process, and restoring from its replica.

``Replicator`` starts ``tool replicate DB URL`` in its own session with its
output in a log file, reports the CPU and memory of its process tree, and
stops it with SIGTERM (SIGKILL after a timeout), collecting the exit code
and the peak RSS (VmHWM of the tree, sampled until it exits).

``restore`` runs ``tool restore -o OUT URL`` and reads the result back with
sqlite3: ``max(id)`` and, when asked, ``count(*)`` and ``PRAGMA quick_check``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procstat import tree_cpu_seconds, tree_rss_bytes
from tools import Tool


@dataclass
class RestoreResult:
    ok: bool
    seconds: float
    max_id: int = 0
    count: int = -1
    quick_check: str = ""
    db_bytes: int = 0
    error: str = ""


def read_restored(path: Path, verify: bool) -> tuple[int, int, str]:
    """(max(id), count(*) or -1, quick_check or '') of a restored database."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            max_id = conn.execute("SELECT max(id) FROM t").fetchone()[0] or 0
        except sqlite3.OperationalError:  # restored from before the table existed
            max_id = 0
        count, check = -1, ""
        if verify:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            try:
                count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
    finally:
        conn.close()
    return max_id, count, check


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def restore(
    tool: Tool, replica_dir: Path, out_path: Path, *, verify: bool = False, keep: bool = False,
    timeout: float = 600.0, runner: Callable[[list[str]], tuple[int, str]] | None = None,
) -> RestoreResult:
    """Restore ``replica_dir`` with ``tool`` into ``out_path`` (removed afterwards unless keep).

    ``runner`` runs the CLI arguments (without the program) some other way
    than a new process, e.g. ``CliBatch.run``; it returns (exit code, stderr).
    """
    remove_database(out_path)
    argv = tool.restore_argv(replica_dir, out_path)
    started = time.perf_counter()
    if runner is None:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        returncode, stderr = proc.returncode, proc.stderr or proc.stdout
    else:
        returncode, stderr = runner(argv[len(tool.program):])
    seconds = time.perf_counter() - started
    try:
        if returncode != 0 or not out_path.exists():
            error = stderr.strip().splitlines()
            return RestoreResult(False, seconds, error=error[-1] if error else "no output")
        size = out_path.stat().st_size
        max_id, count, check = read_restored(out_path, verify)
        return RestoreResult(True, seconds, max_id, count, check, size)
    finally:
        if not keep:
            remove_database(out_path)


class Replicator:
    """One ``tool replicate`` process."""

    def __init__(self, tool: Tool, db_path: Path, replica_dir: Path, log_path: Path) -> None:
        self.tool = tool
        self.db_path = db_path
        self.replica_dir = replica_dir
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.max_rss_bytes = 0
        self.started_at = 0.0

    def start(self) -> None:
        self.replica_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                self.tool.replicate_argv(self.db_path, self.replica_dir),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_at = time.time()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.exit_code is None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss_bytes(self) -> tuple[int, int]:
        return tree_rss_bytes(self.pid)

    def wait_restorable(self, work_dir: Path, timeout: float = 30.0) -> float:
        """Seconds until the replica restores (the initial snapshot is there)."""
        started = time.time()
        out = work_dir / "ready-probe.db"
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.tool.name} exited early; see {self.log_path}")
            if any(self.replica_dir.iterdir()):
                result = restore(self.tool, self.replica_dir, out)
                if result.ok:
                    return time.time() - started
            if time.time() - started > timeout:
                raise RuntimeError(f"{self.tool.name}: replica not restorable after {timeout} s")
            time.sleep(0.2)

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.proc is None or self.exit_code is not None:
            return self.exit_code or 0
        if self.proc.returncode is not None:  # already reaped by poll()
            self.exit_code = self.proc.returncode
            return self.exit_code
        self._sample_rss()
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        while True:
            self._sample_rss()
            pid, status, _usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                pid, status, _usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.02)
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code
        try:  # anything the tool left in its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.exit_code

    def _sample_rss(self) -> None:
        # VmHWM, not wait4's ru_maxrss: the latter also counts the forked
        # Python image before exec, which swamps a small Go process.
        self.max_rss_bytes = max(self.max_rss_bytes, tree_rss_bytes(self.pid)[1])

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])
