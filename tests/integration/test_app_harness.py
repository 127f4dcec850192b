"""The test harness's own promise: a litetool process a test leaves running
(a test that failed midway) is killed after the test, not left to the next."""

from __future__ import annotations

import sqlite3

from app_harness import Litetool, kill_leftovers


def test_a_litetool_left_running_is_killed_by_kill_leftovers(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t(x)")
    litetool = Litetool(db, (tmp_path / "replica").as_uri(), tmp_path / "litetool.log")
    litetool.start()
    assert litetool.proc is not None and litetool.proc.poll() is None
    assert kill_leftovers() == 1
    assert litetool.proc.returncode == -9
    assert kill_leftovers() == 0
