"""kill -9, again and again: nothing litetool reported replicated is ever lost.

A writer process commits numbered rows (row k in transaction k, or 300 rows
in one transaction larger than SQLite's page cache, so that frames reach the
WAL before the commit). ``litetool replicate`` runs beside it and is killed
with SIGKILL at a random moment of a random phase: by itself at one of its
crash points (a capture, a checkpoint's locked step, right after a
checkpoint, a segment upload, a record publish, a snapshot upload; the N-th
time, N random) or from outside after a random delay. Some cycles also
kill -9 the writer in the middle of a transaction, or both at once. Then
litetool starts again.

After each cycle, with litetool down: the latest restore is exactly rows
1..N (integrity ok), where N is at least what the last point litetool had
reported replicated (its ``synced`` and ``snapshot`` log events) restores to;
that point and another reported point, restored with ``--generation`` and
``--txid``, are gap-free prefixes too. At the end the writer stops, litetool
catches up and stops with SIGTERM (exit 0), and the latest restore equals the
live database row for row.

Short mode: 10 cycles, the writer paced at about 200 tx/s, then at full
speed, then in large transactions. Long mode: 200 cycles.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_harness import Litetool, restore
from rel_common import scale

WRITER = r"""
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
mode = sys.argv[2]
db.execute("PRAGMA busy_timeout=30000")
db.execute("PRAGMA cache_size=5")  # large transactions spill frames into the WAL
k = db.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0]
while True:
    if mode == "large":
        db.execute("BEGIN")
        for _ in range(300):
            k += 1
            db.execute("INSERT INTO t(id, pad) VALUES (?, randomblob(1000))", (k,))
        db.execute("COMMIT")
        time.sleep(0.05)
    else:
        k += 1
        db.execute("INSERT INTO t(id, pad) VALUES (?, randomblob(200))", (k,))
        if mode == "paced":
            time.sleep(0.005)
"""

# Crash points (litetool.crashpoints) and how many times each is
# reached in a second or two of this workload, roughly: N is drawn below it.
PHASES = {
    "capture": 60,
    "checkpoint-locked": 2,
    "checkpoint-done": 2,
    "segment-uploaded": 30,
    "record-published": 30,
    "snapshot-uploaded": 2,
    "compaction-published": 1,
    "outside": 0,  # SIGKILL from the test after a random delay
}


class Writer:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(self.db), mode])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def reported_points(log: Path) -> list[tuple[str, int]]:
    """(generation, txid) of every point litetool said it had replicated."""
    points = []
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut by SIGKILL
        if event.get("event") == "synced":
            points.append((event["generation"], int(event["txids"].split("..")[1])))
        elif event.get("event") == "snapshot":
            points.append((event["generation"], int(event["txid"])))
    return points


def rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", path
        return conn.execute("SELECT id, pad FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def prefix_rows(url: str, out: Path, *extra: str) -> int:
    """Restore; the rows must be exactly 1..N (integrity ok); returns N."""
    out.unlink(missing_ok=True)
    result = restore(url, out, *extra)
    assert result.returncode == 0, (extra, result.stderr)
    conn = sqlite3.connect(out)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", extra
        ids = [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")]
    finally:
        conn.close()
    out.unlink()
    assert ids == list(range(1, len(ids) + 1)), f"not a gap-free prefix: {extra}"
    return len(ids)


@pytest.mark.timeout(scale(300, 3 * 3600))  # the long mode runs far past the suite's 300 s
def test_kill_9_at_random_moments_loses_nothing_reported(tmp_path, figures):
    rng = random.Random(20261207)
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)")
    conn.close()
    url = (tmp_path / "replica").as_uri()
    log = tmp_path / "litetool.log"
    out = tmp_path / "restored.db"
    cycles = scale(10, 200)
    modes = ["paced", "full", "large"]
    writer = Writer(db)
    writer.start("paced")
    lt: Litetool | None = None
    try:
        for cycle in range(cycles):
            phase = rng.choice(list(PHASES))
            env = {}
            if phase != "outside":
                env["LITETOOL_CRASH_AT"] = f"{phase}:{rng.randint(1, PHASES[phase])}"
            lt = Litetool(db, url, log, "--snapshot-interval", "2s", env=env)
            lt.start(wait=False)
            assert lt.proc is not None
            deadline = time.monotonic() + (rng.uniform(0.8, 3.0) if phase == "outside" else 6.0)
            writer_kill = cycle % 5 == 4  # the writer too, at the same moment
            while lt.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if writer_kill:
                writer.kill()
            if lt.proc.poll() is None:
                lt.kill()
                figures.add(f"kills_{phase if phase == 'outside' else phase + '_late'}")
            else:
                assert lt.proc.returncode == -signal.SIGKILL, lt.tail()
                figures.add(f"kills_{phase}")
            figures.add("cycles")
            if writer_kill:
                writer.start(modes[(cycle // 5 + 1) % len(modes)])
            elif cycle == cycles // 2:
                writer.kill()  # mid-transaction, then on at full speed
                writer.start("full")
            # With litetool down: what it reported must restore, and more.
            points = reported_points(log)
            if points:
                generation, txid = points[-1]
                reported = prefix_rows(url, out, "--generation", generation, "--txid", str(txid))
                latest = prefix_rows(url, out)
                assert latest >= reported, (cycle, phase, latest, reported)
                generation, txid = rng.choice(points)
                prefix_rows(url, out, "--generation", generation, "--txid", str(txid))
                figures.add("restores_checked", 3)
        writer.stop()
        lt = Litetool(db, url, log)
        lt.start()
        lt.wait_caught_up(timeout=120)
        assert lt.stop() == 0, lt.tail()
        result = restore(url, out)
        assert result.returncode == 0, result.stderr
        live, restored = rows(db), rows(out)
        figures.set("rows_written", len(live))
        figures.set("lost_transactions", len(live) - len(restored))
        figures.set("writer_kills", writer.kills)
        assert [r[0] for r in live] == list(range(1, len(live) + 1))
        assert restored == live, "the latest restore differs from the live database"
    finally:
        writer.stop()
        if lt is not None and lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
