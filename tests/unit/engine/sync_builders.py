"""Builders for the unit tests of the capture side, the spool files and the
replica sync: page digests of the captured image, a database's replication
opened (not run) over a real database and a file replica, its replica sync,
and what a restore of that replica holds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine_builders import database_settings, replication_of

from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.continuity.page_digests import PageDigests, build_digests
from litetool.engine.replication import DatabaseReplication
from litetool.engine.runtime.status import StatusBoard
from litetool.engine.spool.spool import Spool
from litetool.engine.sync.replica_sync import ReplicaSync
from litetool.storage import Replica

REPO = Path(__file__).resolve().parents[3]


def rows_of(db: Path | sqlite3.Connection) -> list[tuple]:
    """Every row of table ``t``, in order, as SQLite reads it."""
    if isinstance(db, sqlite3.Connection):
        return db.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    finally:
        conn.close()


def digests_of_captured_image(side: CaptureSide) -> PageDigests:
    """Build the page digests of the image at the captured txid now, as the
    digest keeper does in the background, and hand them to the keeper."""
    source = side.capture.open_snapshot()
    try:
        table = PageDigests.create(side.spool.directory, side.generation, source.page_size)
        assert build_digests(table, source)
    finally:
        source.close()
    side.keeper.digests = table
    return table


def reopen_capture_side(
    db: Path, log: Callable[..., None], *, replicas: list | None = None
) -> CaptureSide:
    """A new capture side of the database *db* (its default spool), opened: a
    restart of litetool."""
    config = database_settings(db, [{"url": "memory://unused"}])
    side = CaptureSide(config, StatusBoard(version="test"), replicas or [], log=log)
    side.open()
    return side


def open_replication(
    tmp_path: Path, log: Callable[..., None], *, rows: int = 0
) -> tuple[DatabaseReplication, sqlite3.Connection, str]:
    """A WAL database ``app.db`` with a table ``t(x)`` holding 1..*rows*
    (written by the returned application connection), its replication with
    the capture side open and no capture thread (snapshots are served where
    they are asked for), and the URL of its file replica ``tmp_path/replica``."""
    url = (tmp_path / "replica").as_uri()
    replication, app, _ = replication_of(
        tmp_path, log, rows=rows, replicas=[{"url": url, "name": "m"}], opened=True
    )
    return replication, app, url


def replica_sync(
    replication: DatabaseReplication,
    url: str,
    log: Callable[..., None],
    *,
    name: str = "m",
    sync_interval: float = 1.0,
) -> ReplicaSync:
    """The sync of replica *name* (``url``) of *replication*, as ``run`` builds it."""
    sync = ReplicaSync(
        name=name,
        replica=Replica.open(url),
        engine=replication,
        board=replication.board,
        db_path=str(replication.db_path),
        sync_interval=sync_interval,
        snapshot_interval=24 * 3600.0,
        retention=7 * 24 * 3600.0,
        gc_grace=3600.0,
        log=log,
    )
    replication.replicas.append(sync)
    return sync


def restore_with_cli(url: str, out: Path) -> list[tuple]:
    """``litetool restore URL -o OUT`` in a process of its own: the rows it restored."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "litetool", "restore", url, "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return rows_of(out)


def spooled(spool: Spool) -> list[tuple[int, int, bytes]]:
    """(first txid, last txid, frames) of every record the spool serves, read
    from its files."""
    located = spool.locate_after(-1, max_bytes=1 << 40)
    try:
        return [
            (record.first_txid, record.last_txid, os.pread(fd, record.frames_bytes, offset))
            for record, (fd, offset, _path) in zip(located.records, located.sources, strict=True)
        ]
    finally:
        located.close()
