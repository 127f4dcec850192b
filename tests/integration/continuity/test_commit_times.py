"""``restore --at`` an instant 10 ms after a commit lands on exactly that commit.

A writer process commits one row per transaction at 1, 20 and 200 tx/s and
logs the wall clock right after each COMMIT returned. At 200 tx/s commits are
5 ms apart, so the writer pauses 40 ms after every 50th: the instants are
taken only after commits followed by such a gap (at 1 and 20 tx/s every
commit is). Each restore must hold exactly the rows committed up to that
commit: a commit time recorded late by more than 10 ms lands one early.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from app_harness import Litetool, restore

from litetool.timespec import format_instant_us

WRITER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
rate, count, out = float(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4], "w")
due = time.time() + 0.2
for k in range(1, count + 1):
    delay = due - time.time()
    if delay > 0:
        time.sleep(delay)
    db.execute("INSERT INTO t(id, v) VALUES (?, 'x')", (k,))
    out.write(f"{k} {int(time.time() * 1e6)}\n")
    due += 1 / rate + (0.040 if k % 50 == 0 else 0.0)
out.close()
"""


@pytest.mark.parametrize(("rate", "count"), [(1.0, 4), (20.0, 40), (200.0, 400)])
def test_restore_at_10ms_after_a_commit_lands_on_it(tmp_path, rate, count):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.close()
    url = (tmp_path / "replica").as_uri()
    lt = Litetool(db, url, tmp_path / "lt.log")
    lt.start()
    times = tmp_path / "times.txt"
    try:
        lt.wait_caught_up()
        subprocess.run(
            [sys.executable, "-c", WRITER, str(db), str(rate), str(count), str(times)],
            check=True,
            timeout=120,
        )
        time.sleep(0.2)
        lt.wait_caught_up()
        assert lt.stop() == 0, lt.tail()
    finally:
        if lt.proc and lt.proc.poll() is None:
            lt.kill()
    committed = {}
    for line in times.read_text().splitlines():
        k, us = line.split()
        committed[int(k)] = int(us)
    gap_after = [k for k in range(1, count) if committed[k + 1] - committed[k] >= 30_000]
    chosen = gap_after[:: max(1, len(gap_after) // 4)][:4]
    assert len(chosen) >= 3, gap_after
    for k in chosen:
        out = tmp_path / f"at-{k}.db"
        result = restore(url, out, "--at", format_instant_us(committed[k] + 10_000))
        assert result.returncode == 0, result.stderr
        restored = sqlite3.connect(out)
        ids = [row[0] for row in restored.execute("SELECT id FROM t ORDER BY id")]
        restored.close()
        assert ids == list(range(1, k + 1)), (k, len(ids))
