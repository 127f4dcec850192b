"""Snapshot requests served by the capture side of a real database, and their pins."""

from __future__ import annotations

import asyncio

import pytest
from engine_builders import open_capture_side

from litetool.engine.capture.fence import WriteLockBusy
from litetool.engine.snapshot_serving import SnapshotServing


@pytest.fixture
def side(tmp_path):
    side, app = open_capture_side(tmp_path, "memory://serving", lambda *a, **f: None, rows=1)
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
