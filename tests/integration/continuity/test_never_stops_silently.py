"""Replication never stops without saying so.

Two ways were found in which litetool kept capturing but never published
again, logged no error and exited 0 with the replica far behind:

- the application runs its own ``PRAGMA wal_checkpoint(TRUNCATE)`` (busy
  timeout 30 s) while litetool needs a snapshot: the checkpoint waited for
  litetool's reader while holding the write lock the snapshot needed, and the
  snapshot's error killed the replica's task;
- the disk under the spool fills and then frees: a torn append stayed in the
  spool file and every later read of it failed, killing the task.

Each test ends with a restore compared row by row with the live database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from app_harness import App, Litetool, assert_restores_live

CHECKPOINT = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
started = time.monotonic()
result = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
print(time.monotonic() - started, result[0])
conn.close()
"""


def checkpoint_truncate(db: Path) -> tuple[float, int]:
    """An application's TRUNCATE checkpoint in its own process: (seconds, busy)."""
    out = subprocess.run(
        [sys.executable, "-c", CHECKPOINT, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1])


def test_application_truncate_during_snapshots_neither_stalls_nor_stops(tmp_path):
    db = tmp_path / "app.db"
    app = App(db)
    app.steps("open; create; insert 3000")
    lt = Litetool(
        db, (tmp_path / "replica").as_uri(), tmp_path / "lt.log", "--snapshot-interval", "1s"
    )
    lt.start()
    try:
        lt.wait_caught_up()
        stalls = []
        for _ in range(4):
            # Frames after litetool's mark, a snapshot due: the checkpoint waits
            # for litetool's reader while holding the write lock.
            app.steps("update 200; commits 20")
            time.sleep(0.9)
            seconds, busy = checkpoint_truncate(db)
            stalls.append((round(seconds, 3), busy))
        app.steps("commits 3000")
        lt.wait_caught_up()
        assert lt.stop() == 0, lt.tail()
    finally:
        if lt.proc and lt.proc.poll() is None:
            lt.kill()
    # Litestream 0.3.13 holds its reader too; ours makes way within a look.
    assert max(seconds for seconds, _ in stalls) < 2.0, stalls
    assert all(busy == 0 for _, busy in stalls), stalls  # the WAL was truncated
    events = lt.events()
    assert not [e for e in events if e["event"] == "task failed"], lt.tail()
    assert_restores_live(lt.url, db, tmp_path / "restored.db")
    app.quit()


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (the spool's disk), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_spool_disk_full_then_free_replicates_everything(tmp_path, small_disk):
    db = tmp_path / "app.db"
    config = tmp_path / "litetool.toml"
    replica = tmp_path / "replica"
    config.write_text(
        f"""
[log]
level = "debug"
format = "json"
[metrics]
addr = "127.0.0.1:0"
[[databases]]
path = "{db}"
spool-dir = "{small_disk / "spool"}"
  [[databases.replicas]]
  url = "{replica.as_uri()}"
  sync-interval = "0s"
"""
    )
    app = App(db)
    app.steps("open; create; insert 500")
    lt = Litetool(db, replica.as_uri(), tmp_path / "lt.log", config=config)
    lt.start()
    try:
        lt.wait_caught_up()
        filler = small_disk / "filler"
        with open(filler, "wb") as handle:  # leave about 300 KB
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            handle.write(b"\0" * max(0, free - 300_000))
        writer = threading.Thread(target=app.steps, args=("insert 2000; insert 2000",))
        writer.start()
        writer.join()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e["event"] == "capture failed" for e in lt.events()):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the spool never filled: {lt.tail()}")
        filler.unlink()  # the disk frees
        app.steps("commits 200")
        lt.wait_caught_up()
        assert lt.stop() == 0, lt.tail()
    finally:
        if lt.proc and lt.proc.poll() is None:
            lt.kill()
    events = lt.events()
    assert not [e for e in events if e["event"] == "task failed"], lt.tail()
    assert_restores_live(lt.url, db, tmp_path / "restored.db")
    app.quit()
