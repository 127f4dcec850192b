"""When the capture loop starts a controlled checkpoint, and whether it truncates."""

from __future__ import annotations

from pathlib import Path

from litetool.engine.capture.checkpoint import MIN_CHECKPOINT_SPACING_SECONDS, CheckpointPolicy
from litetool.engine.capture.fence import CheckpointResult
from litetool.engine.runtime.status import DatabaseStatus, StatusBoard

PAGE_SIZE = 4096


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, board: StatusBoard | None = None, log=None) -> CheckpointPolicy:
    return CheckpointPolicy(
        soft_pages=1000,
        hard_pages=10000,
        interval=60.0,
        board=board or StatusBoard(version="test"),
        db_path=Path("/db/app.db"),
        log=log or (lambda level, event, **fields: None),
        clock=clock,
    )


def test_nothing_to_checkpoint_never_starts_one():
    clock = Clock()
    checkpoints = policy(clock)
    clock.now += 3600
    assert not checkpoints.starts_now(0)


def test_the_soft_threshold_waits_for_the_spacing_the_hard_one_does_not():
    clock = Clock()
    checkpoints = policy(clock)
    assert not checkpoints.starts_now(999)
    clock.now += MIN_CHECKPOINT_SPACING_SECONDS
    assert checkpoints.starts_now(1000)
    clock.now += MIN_CHECKPOINT_SPACING_SECONDS / 2
    assert not checkpoints.starts_now(5000)  # soft, but too soon after the last
    assert checkpoints.starts_now(10000)  # hard: at once
    clock.now += MIN_CHECKPOINT_SPACING_SECONDS
    assert checkpoints.starts_now(1000)


def test_the_interval_starts_one_for_a_few_frames():
    clock = Clock()
    checkpoints = policy(clock)
    clock.now += 59
    assert not checkpoints.starts_now(1)
    clock.now += 1
    assert checkpoints.starts_now(1)
    assert not checkpoints.starts_now(1)  # the interval counts from this one


def test_only_a_large_wal_file_the_application_no_longer_fills_is_truncated():
    checkpoints = policy(Clock())
    hard_bytes = 10000 * (24 + PAGE_SIZE)
    assert checkpoints.truncates(999, hard_bytes + 1, PAGE_SIZE)
    assert not checkpoints.truncates(999, hard_bytes, PAGE_SIZE)
    assert not checkpoints.truncates(1000, hard_bytes * 2, PAGE_SIZE)  # still being filled


def test_a_finished_checkpoint_is_counted_published_and_logged():
    board = StatusBoard(version="test")
    board.set_database(DatabaseStatus(path="/db/app.db"))
    logged: list[tuple[str, dict]] = []
    checkpoints = policy(Clock(), board, lambda level, event, **f: logged.append((event, f)))
    result = CheckpointResult(
        mode="TRUNCATE",
        wal_frames=1200,
        checkpointed_frames=1200,
        busy=False,
        seconds=0.5,
        locked_seconds=0.02,
    )
    checkpoints._report(result, braked_seconds=1.25)
    checkpoints._report(result, braked_seconds=1.25)
    status = board.databases()[0]
    assert status.checkpoints == {"TRUNCATE": 2}
    assert status.checkpoint_seconds_total == 1.0
    assert status.writers_held_seconds_total == 0.04
    assert [e.message for e in board.events_since(0)] == ["TRUNCATE checkpoint of 1200 frames"] * 2
    assert logged[0] == (
        "checkpoint",
        {
            "mode": "TRUNCATE",
            "frames": 1200,
            "checkpointed": 1200,
            "busy": False,
            "seconds": 0.5,
            "locked_seconds": 0.02,
            "braked_seconds_total": 1.25,
        },
    )
