"""Replicas for the TUI tests (imported as ``replica_builders``; this directory is on sys.path).

``make_engine_replica``: a real replica written by ``litetool replicate`` in
another process while this process commits rows to a real SQLite database.
``write_fixed_replica``: index records with fixed ids and commit times (no
objects), for snapshot tests whose pixels must not depend on the clock.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from litetool.storage import (
    IndexRecord,
    Replica,
    SegmentEntry,
    SnapshotEntry,
    new_generation_id,
)


@dataclass(frozen=True)
class EngineReplica:
    db_path: Path
    url: str
    rows: int  # rows committed, one transaction each, after the first snapshot
    pause_after: int  # rows committed before a pause of PAUSE_SECONDS


PAUSE_SECONDS = 1.0


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def make_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    return connection


def make_engine_replica(
    directory: Path, *, rows: int = 30, pause_after: int = 20, gap_seconds: float = 0.01
) -> EngineReplica:
    """Replicate a fresh database with ``litetool replicate`` in a child process while
    committing *rows* rows (``n`` = 0, 1, ...), one per transaction, with a pause after
    *pause_after* rows (two clusters of commits on the timeline); stop it with SIGINT."""
    db_path = directory / "app.db"
    replica_dir = directory / "replica"
    url = replica_dir.as_uri()
    connection = make_database(db_path)
    log = open(directory / "replicate.log", "wb")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [sys.executable, "-m", "litetool", "replicate", str(db_path), url, "--sync-interval", "0s"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        # The first snapshot (txid S, no rows yet) opens the generation.
        _wait(
            lambda: any((replica_dir / "generations").glob("*/index/*")),
            30,
            "the first index record",
        )
        for n in range(rows):
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
            time.sleep(PAUSE_SECONDS if n + 1 == pause_after else gap_seconds)
        time.sleep(0.3)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
            log.close()
            connection.close()
    assert child.returncode == 0, (directory / "replicate.log").read_text()
    return EngineReplica(db_path, url, rows, pause_after)


def restored_rows(path: Path) -> list[int]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [n for (n,) in connection.execute("SELECT n FROM t ORDER BY id")]
    finally:
        connection.close()


# -- deterministic replicas for snapshots ---------------------------------------------------

BASE_TIME_US = 1_764_040_000_000_000  # 2025-11-25 03:06:40 UTC
PAGE_SIZE = 4096


def _digest(label: str) -> str:
    return (label.encode().hex() + "0" * 64)[:64]


def _segment(first_txid: int, times_us: list[int], db_pages: list[int], label: str):
    return SegmentEntry.create(
        digest=_digest(label),
        first_txid=first_txid,
        stored_bytes=700 + 90 * len(times_us),
        page_size=PAGE_SIZE,
        frames=2 * len(times_us),
        times_us=times_us,
        db_pages=db_pages,
    )


def fixed_generations() -> list[tuple[str, list[IndexRecord]]]:
    """Two generations with fixed ids, times and sizes (records only)."""
    old = new_generation_id(BASE_TIME_US // 1000 - 3_600_000, 0x1111)
    new = new_generation_id(BASE_TIME_US // 1000, 0x2222)
    old_records = [
        IndexRecord(
            old,
            0,
            BASE_TIME_US - 3_600_000_000,
            "fixture:1",
            snapshots=(
                SnapshotEntry(_digest("old-snap"), 1, BASE_TIME_US - 3_600_000_000, 4096, 2, 900),
            ),
            reason="first run",
        ),
        IndexRecord(
            old,
            1,
            BASE_TIME_US - 3_500_000_000,
            "fixture:1",
            segments=(
                _segment(
                    2,
                    [BASE_TIME_US - 3_590_000_000 + i * 10_000_000 for i in range(9)],
                    [2] * 9,
                    "old-seg",
                ),
            ),
        ),
    ]
    # The new generation: a burst, a quiet minute, a longer burst.
    times = [BASE_TIME_US + i * 250_000 for i in range(12)]
    times += [BASE_TIME_US + 60_000_000 + i * 100_000 for i in range(20)]
    new_records = [
        IndexRecord(
            new,
            0,
            BASE_TIME_US,
            "fixture:1",
            snapshots=(SnapshotEntry(_digest("new-snap"), 40, BASE_TIME_US, 4096, 3, 1300),),
            reason="WAL overwritten by another process while litetool was stopped",
        ),
        IndexRecord(
            new,
            1,
            BASE_TIME_US + 4_000_000,
            "fixture:1",
            segments=(_segment(41, times[1:12], [3 + i // 4 for i in range(11)], "new-a"),),
        ),
        IndexRecord(
            new,
            2,
            BASE_TIME_US + 62_000_000,
            "fixture:1",
            segments=(_segment(52, times[12:], [6 + i // 5 for i in range(20)], "new-b"),),
        ),
    ]
    return [(old, old_records), (new, new_records)]


async def write_fixed_replica(url: str) -> None:
    replica = Replica.open(url)
    await replica.ensure_format(create=True)
    for _generation, records in fixed_generations():
        for record in records:
            await replica.publish_record(record)
