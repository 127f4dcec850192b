"""ReplicaHealth: backoff, reporting an error no retry heals once, status."""

import time

from litetool.engine.replica_health import (
    BACKOFF_MAX_SECONDS,
    ReplicaHealth,
    cannot_heal,
)
from litetool.engine.status import StatusBoard
from litetool.errors import ConfigError, StorageMisconfigured, StorageUnavailable
from litetool.storage import Replica


def _health(tmp_path):
    events = []
    board = StatusBoard(version="test")
    health = ReplicaHealth(
        name="m",
        replica=Replica.open((tmp_path / "replica").as_uri()),
        board=board,
        db_path="/db/app.db",
        log=lambda level, event, **f: events.append((level, event)),
    )
    return health, events


def test_backoff_doubles_up_to_a_minute_and_a_success_resets_it(tmp_path):
    health, _ = _health(tmp_path)
    assert health.backoff_seconds() == 0.0
    for _ in range(3):
        health.failed(StorageUnavailable("down"), state="backoff")
    assert health.backoff_seconds() == 4.0 and health.outage
    for _ in range(10):
        health.failed(StorageUnavailable("down"), state="backoff")
    assert health.backoff_seconds() == BACKOFF_MAX_SECONDS
    assert not health.reachable
    health.succeeded()
    assert health.backoff_seconds() == 0.0 and health.reachable and health.proven


def test_an_error_no_retry_heals_is_logged_once_per_problem(tmp_path):
    health, events = _health(tmp_path)
    denied = StorageMisconfigured("access denied", problem="credentials refused")
    assert cannot_heal(denied) and cannot_heal(ConfigError("bad"))
    assert not cannot_heal(StorageUnavailable("down"))
    assert health.never_worked_and_cannot(denied)
    health.failed(denied, state="error")
    health.failed(denied, state="error")
    assert events == [("error", "sync failed"), ("debug", "sync failed")]
    assert health.replica_status().sync_errors == 2
    health.succeeded()
    assert not health.never_worked_and_cannot(denied)  # it worked once: retried


def test_progress_long_ago_is_not_reachable(tmp_path):
    health, _ = _health(tmp_path)
    assert health.reachable
    health.last_progress = time.monotonic() - 3600
    assert not health.reachable
    health.progress()
    assert health.reachable
