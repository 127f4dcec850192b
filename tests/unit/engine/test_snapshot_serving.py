"""Snapshot requests served by the capture side of a real database, and their pins."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from litetool.config.model import build_settings
from litetool.engine.capture_side import CaptureSide
from litetool.engine.fence import WriteLockBusy
from litetool.engine.snapshot_serving import SnapshotServing
from litetool.engine.status import StatusBoard


@pytest.fixture
def side(tmp_path):
    db = tmp_path / "app.db"
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE t(x)")
    app.execute("INSERT INTO t VALUES (1)")
    data = {"databases": [{"path": str(db), "replicas": [{"url": "memory://serving"}]}]}
    config = build_settings(data, {}, source=None).databases[0]
    side = CaptureSide(config, StatusBoard(version="test"), [], log=lambda *a, **f: None)
    side.open()
    side.app = app
    yield side
    side.close()
    app.close()


async def _served(snapshots: SnapshotServing, **serve):
    """Ask for a snapshot, serve it as the capture thread does, and wait for it."""
    task = asyncio.create_task(snapshots.take())
    await asyncio.sleep(0)  # the request is queued
    await asyncio.to_thread(snapshots.serve, **serve)
    return await task


def test_a_request_is_served_at_the_captured_txid_and_pinned_until_released(side):
    snapshots = SnapshotServing(side)
    side.app.execute("INSERT INTO t VALUES (2)")  # captured under the snapshot's lock
    source = asyncio.run(_served(snapshots))
    try:
        assert source.txid == side.capture.txid == 1
        assert snapshots.pinned() == [1]
    finally:
        source.close()
    snapshots.release(source)
    assert snapshots.pinned() == []


def test_a_request_waits_while_the_application_holds_the_write_lock(side):
    snapshots = SnapshotServing(side)

    async def scenario():
        task = asyncio.create_task(snapshots.take())
        await asyncio.sleep(0)
        side.app.execute("BEGIN IMMEDIATE")
        await asyncio.to_thread(snapshots.serve)  # tries the lock briefly, then goes on
        assert snapshots.waiting and not task.done()
        side.app.execute("COMMIT")
        await asyncio.to_thread(snapshots.serve)
        assert not snapshots.waiting
        return await task

    source = asyncio.run(scenario())
    source.close()
    assert snapshots.pinned() == [source.txid]


def test_a_request_that_cannot_have_the_lock_in_time_fails(side, monkeypatch):
    from litetool.engine import snapshot_serving

    monkeypatch.setattr(snapshot_serving, "SNAPSHOT_LOCK_PATIENCE_SECONDS", 0.0)
    snapshots = SnapshotServing(side)
    side.app.execute("BEGIN IMMEDIATE")
    with pytest.raises(WriteLockBusy):
        asyncio.run(_served(snapshots))
    side.app.execute("ROLLBACK")
    assert snapshots.pinned() == [] and not snapshots.waiting


def test_after_the_capture_thread_left_requests_are_served_where_they_are_made(side):
    snapshots = SnapshotServing(side)
    snapshots.leave()
    source = asyncio.run(snapshots.take())  # no serve(): nobody else would
    source.close()
    assert snapshots.unpin_all() == [source.txid]
    assert snapshots.pinned() == []
