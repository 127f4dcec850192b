"""Validation of a real file replica against the live database at one txid:
a replica that restores to the live image validates, and the digests are
BLAKE3 over the image SQLite serializes (journal-mode bytes normalized); a
damaged object, a replica without a generation and one that does not catch
up fail, each saying why."""

from __future__ import annotations

import pytest
from capture_builders import flip_byte, normalized_digest, object_path
from engine_builders import Log
from sync_builders import open_replication, replica_sync

from litetool.engine import validation
from litetool.engine.validation import restored_digest, source_digest, validate_replica


@pytest.fixture
def replicated(tmp_path):
    """The replication of ``app.db`` (3 rows), its application and the sync of
    its file replica ``m`` (not started)."""
    log = Log()
    replication, app, url = open_replication(tmp_path, log, rows=3)
    sync = replica_sync(replication, url, log)
    yield replication, app, sync, tmp_path / "replica"
    replication.side.close()
    app.close()


def write(replication, app, count: int, size: int = 200) -> int:
    """The application commits *count* rows; capture takes them. The txid."""
    for _ in range(count):
        app.execute("INSERT INTO t VALUES (randomblob(?))", (size,))
    replication.side.capture.capture_once()
    return replication.txid


async def test_a_replica_that_restores_to_the_live_database_validates(replicated):
    replication, app, sync, _ = replicated
    await sync._start()
    txid = write(replication, app, 30)
    assert await sync.sync_once()
    result = await validate_replica(replication, sync)
    assert result.ok, result.message
    assert (result.txid, result.generation) == (txid, sync.progress.generation)
    assert result.message == f"txid {txid} restores to exactly the live database"
    live = normalized_digest(app.serialize())
    assert result.live_digest == result.restored_digest == live
    assert result.database == str(replication.db_path) and result.replica == "m"
    assert replication.snapshots.pinned() == []  # the live image was let go


@pytest.mark.parametrize("damaged", ["segment", "snapshot"])
async def test_a_replica_whose_object_was_damaged_does_not_validate(replicated, damaged):
    replication, app, sync, replica_dir = replicated
    await sync._start()
    txid = write(replication, app, 30)
    assert await sync.sync_once()
    index = await sync.replica.index.load_generation(sync.progress.generation)
    digest = (
        index.segments[-1].digest if damaged == "segment" else index.snapshots[-1].manifest_digest
    )
    path = object_path(replica_dir, digest)
    flip_byte(path, path.stat().st_size // 2)
    result = await validate_replica(replication, sync)
    assert not result.ok
    assert (result.txid, result.generation) == (txid, sync.progress.generation)
    assert result.message.startswith("restore failed: ")
    assert f"corrupt object objects/{digest[:2]}/{digest}" in result.message
    assert result.live_digest is None and result.restored_digest is None


async def test_a_replica_without_a_generation_does_not_validate(replicated):
    replication, app, sync, _ = replicated
    write(replication, app, 3)
    result = await validate_replica(replication, sync)
    assert not result.ok
    assert result.message == "the replica has no current generation yet"
    assert (result.generation, result.txid) == (None, None)
    assert replication.snapshots.pinned() == []  # no image was taken


async def test_a_replica_that_does_not_reach_the_live_txid_does_not_validate(
    replicated, monkeypatch
):
    replication, app, sync, _ = replicated
    await sync._start()
    txid = write(replication, app, 3)  # captured, never synced
    monkeypatch.setattr(validation, "PUBLISH_WAIT_SECONDS", 0.0)
    result = await validate_replica(replication, sync)
    assert not result.ok
    assert result.message == f"the replica did not reach txid {txid} within 0s"
    assert result.txid == txid and sync.progress.txid == 0
    assert sync.wake.is_set()  # the sync was asked to publish


async def test_restored_digest_is_the_digest_of_the_image_at_the_txid_asked_for(replicated):
    replication, app, sync, _ = replicated
    await sync._start()
    at_start = normalized_digest(app.serialize())
    first = write(replication, app, 5)
    at_first = normalized_digest(app.serialize())
    assert await sync.sync_once()
    last = write(replication, app, 5)
    assert await sync.sync_once()
    at_last = normalized_digest(app.serialize())
    generation = sync.progress.generation
    assert len({at_start, at_first, at_last}) == 3
    assert await restored_digest(sync.replica, generation, 0) == at_start
    assert await restored_digest(sync.replica, generation, first) == at_first
    assert await restored_digest(sync.replica, generation, last) == at_last


def test_source_digest_is_the_digest_of_the_image_sqlite_serializes(replicated):
    replication, app, _, _ = replicated
    # More than one digest chunk (4 MiB), part of it only in the WAL.
    write(replication, app, 700, 4000)
    app.execute("PRAGMA wal_checkpoint(PASSIVE)")
    write(replication, app, 700, 4000)
    image = app.serialize()
    assert len(image) > 4 << 20
    with replication.side.capture.open_snapshot() as source:
        write(replication, app, 10)  # after the snapshot: not part of it
        assert source_digest(source) == normalized_digest(image)
    assert normalized_digest(app.serialize()) != normalized_digest(image)
