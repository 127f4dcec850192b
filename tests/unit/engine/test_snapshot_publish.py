"""Publishing a snapshot of a real database to a real file replica: record 0
of a new generation, a later snapshot after the segments that lead up to it,
and an upload that fails, which publishes nothing and leaves the replica as
it was. What the replica holds is checked by restoring it and asking SQLite."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest
from capture_builders import restore_to
from engine_builders import Log, checked_rows
from sync_builders import open_replication, rows_of

from litetool.engine.runtime.status import ReplicaState
from litetool.engine.sync.generation_start import open_generation
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.engine.sync.segment_publish import SegmentPublisher
from litetool.engine.sync.snapshot_publish import SnapshotPublisher
from litetool.errors import ObjectNotFound, StorageError
from litetool.storage import Replica
from litetool.storage.generation_writer import GenerationWriter


class Publishing:
    """A replication of ``app.db`` and everything one replica publishes with."""

    def __init__(self, tmp_path, rows: int) -> None:
        self.tmp_path = tmp_path
        self.log = Log()
        self.replication, self.app, self.url = open_replication(tmp_path, self.log, rows=rows)
        self.replica_dir = tmp_path / "replica"
        self.replica = Replica.open(self.url)
        self.health = ReplicaHealth(
            name="m",
            replica=self.replica,
            board=self.replication.board,
            db_path=str(self.replication.db_path),
            log=self.log,
        )
        self.writer = GenerationWriter(self.replica, self.replication.writer_id)
        self.publisher = SnapshotPublisher(
            engine=self.replication, health=self.health, clock=time.time
        )
        self.segments = SegmentPublisher(
            engine=self.replication, writer=self.writer, health=self.health, clock=time.time
        )
        self.through: list[int] = []  # what publish_through was asked for
        self.position = None
        self.restores = 0

    async def open(self) -> None:
        self.position, new = await open_generation(
            self.writer, self.replication, name="m", detached=False, resume=True,
            detach_reason="", log=self.log,
        )  # fmt: skip
        assert new and self.position.txid == -1

    async def publish_through(self, txid: int) -> bool:
        self.through.append(txid)
        return await self.segments.publish_pending(self.position, through_txid=txid)

    async def publish(self) -> None:
        await self.publisher.publish(self.position, self.publish_through)

    def write(self, *values) -> int:
        """The application commits one row per value; capture takes them. The txid."""
        for value in values:
            self.app.execute("INSERT INTO t VALUES (?)", (value,))
        self.replication.side.capture.capture_once()
        return self.replication.txid

    async def index(self):
        return await self.replica.index.load_generation(self.position.generation)

    async def restored_rows(self, txid: int) -> list[tuple]:
        self.restores += 1
        out = self.tmp_path / f"restored{self.restores}.db"
        await restore_to(self.replica, self.position.generation, txid, out)
        return checked_rows(out)

    def replica_status(self):
        [database] = self.replication.board.databases()
        [status] = [r for r in database.replicas if r.name == "m"]
        return status

    def close(self) -> None:
        self.replication.side.close()
        self.app.close()


@pytest.fixture
def publishing(tmp_path):
    publishing = Publishing(tmp_path, rows=3)
    yield publishing
    publishing.close()


def page_count(app) -> int:
    return app.execute("PRAGMA page_count").fetchone()[0]


async def test_record_0_of_a_new_generation_is_the_snapshot_at_the_current_txid(publishing):
    p = publishing
    await p.open()
    txid = p.write(4, 5)
    assert txid == 2
    await p.publish()
    assert p.through == []  # nothing before record 0 to publish
    index = await p.index()
    [record] = index.records
    assert record.seq == 0 and record.reason == "first run"
    [snapshot] = record.snapshots
    assert (snapshot.txid, snapshot.page_size) == (txid, 4096)
    assert snapshot.page_count == page_count(p.app)
    assert (p.position.txid, p.position.snapshot_txid) == (txid, txid)
    assert p.position.records_since_compaction == 1
    assert await p.restored_rows(txid) == rows_of(p.app)
    # Published: the spool no longer keeps anything for it, the board and log say so.
    assert p.replication.snapshots.pinned() == []
    status = p.replica_status()
    assert (status.state, status.snapshots, status.published_txid) == (ReplicaState.OK, 1, txid)
    assert status.generation == p.position.generation
    [event] = p.log.fields("snapshot")
    assert (event["txid"], event["reason"], event["stored_bytes"]) == (
        txid,
        "first run",
        snapshot.stored_bytes,
    )


async def test_a_later_snapshot_follows_the_segments_up_to_its_txid(publishing):
    p = publishing
    await p.open()
    await p.publish()  # record 0 at txid 0
    txid = p.write(4, 5, 6)
    await p.publish()
    assert p.through == [txid]  # the generation stays contiguous up to the snapshot
    index = await p.index()
    assert [record.seq for record in index.records] == [0, 1, 2]
    zero, segments, later = index.records
    assert [s.txid for s in zero.snapshots] == [0] and zero.segments == ()
    assert (segments.segments[0].first_txid, segments.segments[-1].last_txid) == (1, txid)
    assert segments.snapshots == ()
    [snapshot] = later.snapshots
    assert later.segments == () and later.reason is None
    assert (snapshot.txid, snapshot.page_count) == (txid, page_count(p.app))
    assert (p.position.txid, p.position.snapshot_txid) == (txid, txid)
    assert [event["reason"] for event in p.log.fields("snapshot")] == [
        "first run",
        "snapshot-interval",
    ]
    assert p.replica_status().snapshots == 2
    assert await p.restored_rows(0) == [(1,), (2,), (3,)]
    assert await p.restored_rows(txid) == rows_of(p.app)


def block_objects(replica_dir) -> Callable[[], None]:
    """Make every object upload fail: a file stands where the objects directory
    was. Returns what puts the directory back."""
    objects = replica_dir / "objects"
    away = replica_dir / "objects.away"
    if objects.exists():
        objects.rename(away)
    objects.write_bytes(b"")

    def unblock() -> None:
        objects.unlink()
        if away.exists():
            away.rename(objects)

    return unblock


async def test_a_failed_upload_of_record_0_publishes_nothing_and_a_retry_does(publishing):
    p = publishing
    await p.open()
    txid = p.write(4)
    unblock = block_objects(p.replica_dir)
    with pytest.raises(StorageError, match="put objects/"):
        await p.publish()
    with pytest.raises(ObjectNotFound):
        await p.index()  # no record of the generation
    assert p.position.txid == -1 and p.position.records_since_compaction == 0
    assert p.replication.snapshots.pinned() == []  # the snapshot was given up
    assert p.log.fields("snapshot") == []
    assert p.replica_status().state == ReplicaState.SNAPSHOTTING
    unblock()
    await p.publish()
    assert [record.seq for record in (await p.index()).records] == [0]
    assert await p.restored_rows(txid) == rows_of(p.app)


async def test_a_failed_later_snapshot_leaves_the_published_history_as_it_was(publishing):
    p = publishing
    await p.open()
    await p.publish()
    txid = p.write(4, 5)
    assert await p.segments.publish_pending(p.position)  # the segments are out first
    before = [(r.seq, r.snapshots, r.segments) for r in (await p.index()).records]
    shutil.copytree(p.replica_dir, p.tmp_path / "replica-before")
    unblock = block_objects(p.replica_dir)
    with pytest.raises(StorageError, match="put objects/"):
        await p.publish()
    unblock()
    assert [(r.seq, r.snapshots, r.segments) for r in (await p.index()).records] == before
    assert (p.position.txid, p.position.snapshot_txid) == (txid, 0)
    assert p.replication.snapshots.pinned() == []
    # No index record was written or changed: the generation is file for file as before.
    assert tree(p.replica_dir, "generations") == tree(p.tmp_path / "replica-before", "generations")
    assert await p.restored_rows(txid) == rows_of(p.app)
    await p.publish()
    assert [s.txid for s in (await p.index()).snapshots] == [0, txid]


def tree(root, under: str) -> dict[str, bytes]:
    base = root / under
    return {
        str(path.relative_to(base)): path.read_bytes() for path in base.rglob("*") if path.is_file()
    }
