"""The spool cap on a real database and spool: backpressure first, then detaching."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, replace

import pytest
from engine_builders import open_capture_side

from litetool.engine.snapshot_serving import SnapshotServing
from litetool.engine.spool_cap import SpoolCap
from litetool.engine.sync.replica_progress import ReplicaProgress

CAP = 256 * 1024


@dataclass
class Holder:
    """What the spool cap reads of a replica task (``ReplicaSync``)."""

    name: str
    progress: ReplicaProgress

    def detach(self) -> None:
        self.progress = replace(self.progress, detached=True)


def placed(name: str) -> Holder:
    """A replica with a place in the spool at txid 0, reachable."""
    return Holder(name, ReplicaProgress("g", "g", 0, active_at=time.monotonic()))


def published(holder: Holder, txid: int) -> None:
    holder.progress = replace(holder.progress, txid=txid)


@pytest.fixture
def side(tmp_path):
    logged: list[str] = []
    side, app = open_capture_side(
        tmp_path,
        "memory://cap",
        lambda level, event, **f: logged.append(event),
        **{"spool-max-bytes": CAP},
    )
    side.app, side.logged = app, logged
    yield side
    side.close()
    app.close()


def fill(side, share: float) -> None:
    """Commit and capture until the spool holds ``share`` of its cap."""
    while side.spool.size_bytes < CAP * share:
        side.app.execute("INSERT INTO t VALUES (?)", (os.urandom(4000),))
        side.capture.capture_once()


def test_a_reachable_laggard_brakes_the_application_near_the_cap(side):
    laggard, ahead = placed("slow"), placed("fast")
    side.replicas += [laggard, ahead]
    cap = SpoolCap(side, SnapshotServing(side))
    fill(side, 0.5)
    cap.check_if_near()
    cap.check()
    assert not side.brake.backpressure
    fill(side, 0.9)
    published(ahead, side.capture.txid)
    cap.check_if_near()
    assert side.brake.backpressure
    assert "backpressure" in side.logged
    # An outage never brakes the application.
    laggard.progress = replace(laggard.progress, failing=True)
    cap.check()
    assert not side.brake.backpressure
    assert not laggard.progress.detached


def test_at_the_cap_the_replica_furthest_behind_is_detached(side):
    laggard, ahead = placed("slow"), placed("fast")
    waiting = Holder("new", ReplicaProgress())  # no history in the spool: nothing to detach
    side.replicas += [laggard, ahead, waiting]
    snapshots = SnapshotServing(side)
    cap = SpoolCap(side, snapshots)
    fill(side, 0.5)
    published(ahead, side.capture.txid)
    fill(side, 1.01)
    cap.check()
    assert laggard.progress.detached
    assert not ahead.progress.detached and not waiting.progress.detached
    events = [e.message for e in side.board.events_since(0)]
    assert "spool full: replica slow detached" in events
    assert "spool full" in side.logged


def test_snapshots_in_flight_lose_their_place_at_the_cap(side):
    snapshots = SnapshotServing(side)
    cap = SpoolCap(side, snapshots)
    snapshots.leave()  # serve in this thread
    source = asyncio.run(snapshots.take())
    source.close()
    fill(side, 1.01)
    assert snapshots.pinned() == [0]
    cap.check()
    assert snapshots.pinned() == []
    assert side.logged.count("spool full") == 1
