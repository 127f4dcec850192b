"""A replica's progress: one frozen value its sync loop replaces, any thread reads."""

from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest

from litetool.engine.runtime.status import StatusBoard
from litetool.engine.sync.replica_progress import PROGRESS_WINDOW_SECONDS, ReplicaProgress
from litetool.engine.sync.replica_sync import ReplicaSync
from litetool.errors import StorageMisconfigured, StorageUnavailable
from litetool.storage import Replica


def _sync(tmp_path) -> ReplicaSync:
    engine = SimpleNamespace(generation="g", generation_reason="", txid=0, writer_id="w")
    return ReplicaSync(
        name="m",
        replica=Replica.open((tmp_path / "replica").as_uri()),
        engine=engine,
        board=StatusBoard(version="test"),
        db_path="/db/app.db",
        sync_interval=1.0,
        snapshot_interval=0.0,
        retention=3600.0,
        gc_grace=60.0,
        log=lambda level, event, **f: None,
    )


def test_a_replica_has_a_place_in_the_spool_once_its_record_0_is_published():
    now = time.monotonic()
    unplaced = ReplicaProgress(active_at=now)
    assert not unplaced.has_place and not unplaced.needs_snapshot
    waiting = ReplicaProgress("r", "g", -1, active_at=now)
    assert waiting.needs_snapshot and not waiting.has_place
    placed = ReplicaProgress("r", "g", 0, active_at=now)
    assert placed.has_place and not placed.needs_snapshot
    assert not dataclasses.replace(placed, detached=True).has_place


def test_reachable_means_no_failure_and_an_object_stored_recently():
    now = time.monotonic()
    assert ReplicaProgress(active_at=now).reachable
    assert not ReplicaProgress(active_at=now, failing=True).reachable
    # Nothing stored for longer than the window (a request hanging in an outage).
    assert not ReplicaProgress(active_at=now - PROGRESS_WINDOW_SECONDS - 1).reachable


def test_the_value_is_frozen():
    progress = ReplicaProgress()
    with pytest.raises(dataclasses.FrozenInstanceError):
        progress.txid = 3  # type: ignore[misc]


def test_the_progress_follows_the_replicas_health(tmp_path):
    sync = _sync(tmp_path)
    assert sync.progress.reachable and sync.progress.generation is None
    before = sync.progress
    sync.health.failed(StorageUnavailable("down"), state="backoff")
    assert sync.progress.failing and not sync.progress.reachable
    assert not before.failing  # a value read earlier never changes
    denied = StorageMisconfigured("access denied")
    sync.health.unusable(denied)
    assert sync.progress.unusable_error is denied
    sync.health.succeeded()
    assert sync.progress.reachable and sync.progress.unusable_error is None
    sync.health.last_progress = time.monotonic() - PROGRESS_WINDOW_SECONDS - 1
    sync.health.failed(StorageUnavailable("down"), state="backoff")
    sync.health.succeeded()
    assert not sync.progress.reachable  # nothing stored within the window
    sync.health.progress()
    assert sync.progress.reachable


def test_detaching_from_another_thread_is_seen_at_once_and_stays(tmp_path):
    sync = _sync(tmp_path)
    thread = threading.Thread(target=sync.detach)
    thread.start()
    thread.join()
    assert sync.progress.detached
    (database,) = sync.board.databases()
    assert database.replicas[0].state == "detached"
    sync.health.progress()  # the loop publishes again: the detach stays
    assert sync.progress.detached
