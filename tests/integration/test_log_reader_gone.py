"""``litetool replicate 2>&1 | head``: the log's reader goes away, and litetool
still replicates, stops on SIGTERM with exit 0, and says nothing at exit.

Before: the signal's own log line raised BrokenPipeError in the signal handler,
before the stop was set, so the daemon never stopped (a second SIGTERM did
nothing either; only SIGKILL ended it)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

LITETOOL = str(Path(sys.executable).parent / "litetool")


def test_a_daemon_whose_log_reader_is_gone_replicates_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "app.db"
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    replica = (tmp_path / "replica").as_uri()
    process = subprocess.Popen(
        [LITETOOL, "replicate", str(db), replica, "--sync-interval", "0s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert b"event=" in first, first
        process.stdout.close()  # the reader is gone, as `| head -1` leaves it
        for value in range(1, 51):
            app.execute("INSERT INTO t(v) VALUES (?)", (f"row {value}",))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    out = tmp_path / "restored.db"
    restored = subprocess.run(
        [LITETOOL, "restore", replica, "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert restored.returncode == 0, restored.stderr
    rows = sqlite3.connect(out).execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert rows == app.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert len(rows) == 50
    app.close()
