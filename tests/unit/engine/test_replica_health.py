"""ReplicaHealth: backoff, reporting an error no retry heals once, status."""

from litetool.engine.runtime.status import StatusBoard
from litetool.engine.sync.replica_health import (
    BACKOFF_MAX_SECONDS,
    ReplicaHealth,
    cannot_heal,
)
from litetool.errors import ConfigError, StorageMisconfigured, StorageUnavailable
from litetool.storage import Replica


def _health(tmp_path, on_change=lambda: None):
    events = []
    board = StatusBoard(version="test")
    health = ReplicaHealth(
        name="m",
        replica=Replica.open((tmp_path / "replica").as_uri()),
        board=board,
        db_path="/db/app.db",
        log=lambda level, event, **f: events.append((level, event)),
        on_change=on_change,
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
    health.succeeded()
    assert health.backoff_seconds() == 0.0 and health.failures == 0 and health.proven


def test_an_error_no_retry_heals_is_logged_once_per_problem(tmp_path):
    health, events = _health(tmp_path)
    denied = StorageMisconfigured("access denied", problem="credentials refused")
    assert cannot_heal(denied) and cannot_heal(ConfigError("bad"))
    assert not cannot_heal(StorageUnavailable("down"))
    assert health.never_worked_and_cannot(denied)
    health.failed(denied, state="error")
    health.failed(denied, state="error")
    assert events == [("error", "sync failed"), ("debug", "sync failed")]
    (database,) = health.board.databases()
    assert database.replicas[0].sync_errors == 2
    health.succeeded()
    assert not health.never_worked_and_cannot(denied)  # it worked once: retried


def test_every_change_the_progress_shows_is_told(tmp_path):
    changes = []
    health, _ = _health(tmp_path, on_change=lambda: changes.append(health.failures))
    health.progress()
    health.failed(StorageUnavailable("down"), state="backoff")
    health.unusable(StorageMisconfigured("access denied"))
    health.succeeded()
    health.published("g", 3, 0, 0)
    assert changes == [0, 1, 1, 0, 0]
