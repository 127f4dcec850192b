"""The replicated history shared by the restore integration tests.

A writer process (``restore_writer.py``) commits numbered transactions and logs,
after each, the wall time and a checksum of the whole content. ``litetool
daemon`` (a separate process) replicates the database to a ``file://``
replica with periodic snapshots and frequent checkpoints. The history has two
generations: the daemon is stopped, the writer commits while litetool is away
and truncates the WAL (continuity is lost), then the daemon starts again.
:func:`record_history` builds it once per session (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from restore_writer import SCHEMA, content_checksum

from litetool.cli import main
from litetool.restore import load_candidates
from litetool.storage import GenerationIndex, Replica

WRITER = Path(__file__).with_name("restore_writer.py")
REPO = Path(__file__).resolve().parents[3]
PHASE_1, DOWNTIME, PHASE_3 = 130, 9, 90
SEED = int(os.environ.get("LITETOOL_TEST_SEED", "20251125"))


def write_config(path: Path, db: Path, url: str, extra_replica: str = "") -> None:
    path.write_text(
        "[[databases]]\n"
        f'path = "{db}"\n'
        'snapshot-interval = "3s"\n'
        "checkpoint-soft-pages = 150\n"
        "[[databases.replicas]]\n"
        f'url = "{url}"\n'
        'name = "local"\n'
        'sync-interval = "0s"\n' + extra_replica
    )


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "litetool", "daemon", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_daemon(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def generation_dirs(replica_dir: Path) -> list[Path]:
    return sorted(
        path.parent.parent for path in replica_dir.glob("generations/*/index/0000000000000000")
    )


def run_writer(db: Path, log: Path, first_k: int, count: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(WRITER),
            str(db),
            str(log),
            str(first_k),
            str(count),
            str(SEED + first_k),
        ],
        check=True,
        timeout=300,
    )


@dataclass
class History:
    root: Path
    db: Path
    config: Path
    replica_url: str
    replica_dir: Path
    entries: dict[int, dict]  # writer log by k (k = 0: the initial content)
    old: GenerationIndex
    new: GenerationIndex

    def k_of(self, index: GenerationIndex, txid: int) -> int:
        """The writer's transaction number that litetool captured as *txid*."""
        base = 0 if index is self.old else PHASE_1 + DOWNTIME
        return base + txid - index.first_txid


def record_history(root: Path) -> History:
    db, log, daemon_log = root / "app.db", root / "writer.jsonl", root / "daemon.log"
    replica_dir = root / "replica"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA:
        connection.execute(statement)
    connection.execute("INSERT INTO meta(id, k) VALUES (1, 0)")
    initial = {"k": 0, "time_us": 0, "checksum": content_checksum(connection), "pause": 0}
    connection.close()
    config = root / "litetool.toml"
    write_config(config, db, replica_dir.as_uri())

    daemon = start_daemon(config, daemon_log)
    try:
        wait_for(lambda: len(generation_dirs(replica_dir)) == 1, "the first generation")
        run_writer(db, log, 1, PHASE_1)
    finally:
        stop_daemon(daemon)
    # While litetool is away: more commits, then the WAL is truncated (continuity lost).
    run_writer(db, log, PHASE_1 + 1, DOWNTIME)
    connection = sqlite3.connect(db, isolation_level=None)
    assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    connection.close()
    daemon = start_daemon(config, daemon_log)
    try:
        wait_for(lambda: len(generation_dirs(replica_dir)) == 2, "the second generation")
        run_writer(db, log, PHASE_1 + DOWNTIME + 1, PHASE_3)
    finally:
        stop_daemon(daemon)

    entries = {0: initial}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        entries[entry["k"]] = entry
    replica = Replica.open(replica_dir.as_uri(), name="local")
    candidates = asyncio.run(load_candidates([replica]))
    # The expected values need every transaction's commit time: index records
    # summarise segments, the times are in the segment objects.
    old, new = (asyncio.run(replica.fetch_details(index)) for _, index in candidates)
    assert old.generation < new.generation
    history = History(root, db, config, replica_dir.as_uri(), replica_dir, entries, old, new)
    # One litetool txid per writer commit, in both generations.
    assert old.last_txid - old.first_txid == PHASE_1
    assert new.last_txid - new.first_txid == PHASE_3
    assert history.k_of(new, new.last_txid) == max(entries)
    return history


def restore(history: History, out: Path, *argv: str) -> None:
    code = main(["restore", history.replica_url, "-o", str(out), *argv])
    assert code == 0, argv


def check_restored(out: Path, expected_checksum: str) -> None:
    header = out.read_bytes()[:100]
    assert header[18:20] == b"\x01\x01"  # an ordinary (rollback journal) database
    connection = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        assert sorted(names) == ["meta", "t", "t_grp"]  # no litetool tables
        assert content_checksum(connection) == expected_checksum
    finally:
        connection.close()
