"""When the engine brakes the application for a replica that lags."""

from __future__ import annotations

import time
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from litetool.engine import replica_health
from litetool.engine.brake import (
    BACKPRESSURE_OFF_SHARE,
    BACKPRESSURE_ON_SHARE,
    backpressure_wanted,
)
from litetool.engine.replica_sync import ReplicaSync
from litetool.engine.status import StatusBoard
from litetool.storage import Replica


def test_backpressure_starts_near_the_cap_and_stops_well_under_it():
    assert 0.5 <= BACKPRESSURE_OFF_SHARE < BACKPRESSURE_ON_SHARE < 1
    below = (BACKPRESSURE_OFF_SHARE + BACKPRESSURE_ON_SHARE) / 2
    assert not backpressure_wanted(False, below, True)
    assert backpressure_wanted(False, BACKPRESSURE_ON_SHARE, True)
    assert backpressure_wanted(True, below, True)  # hysteresis: still braking
    assert backpressure_wanted(True, BACKPRESSURE_OFF_SHARE, True)
    assert not backpressure_wanted(True, BACKPRESSURE_OFF_SHARE - 0.01, True)


@given(braking=st.booleans(), share=st.floats(min_value=0, max_value=10))
def test_an_unreachable_laggard_never_brakes_the_application(braking, share):
    assert not backpressure_wanted(braking, share, False)


@given(share=st.floats(min_value=0, max_value=10))
def test_braking_goes_on_no_earlier_than_it_stays_on(share):
    # Whatever starts braking keeps it going: no flapping at one share.
    if backpressure_wanted(False, share, True):
        assert backpressure_wanted(True, share, True)


def _sync():
    engine = SimpleNamespace(generation="g", generation_reason="", txid=0, writer_id="w")
    return ReplicaSync(
        name="m",
        replica=Replica.open(f"memory://reachable-{time.time_ns()}"),
        engine=engine,
        board=StatusBoard(version="test"),
        db_path="/db/app.db",
        sync_interval=1.0,
        snapshot_interval=0.0,
        retention=3600.0,
        gc_grace=60.0,
        log=lambda level, event, **f: None,
    )


def test_a_replica_is_reachable_while_it_makes_progress_without_failures():
    sync = _sync()
    assert sync.reachable
    sync.health.failures = 1  # a failed sync, backing off
    assert not sync.reachable
    sync.health.failures = 0
    # Nothing stored for longer than the window (a request hanging in an outage).
    sync.health.last_progress = time.monotonic() - replica_health.PROGRESS_WINDOW_SECONDS - 1
    assert not sync.reachable
