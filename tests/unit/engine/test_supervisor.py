"""The supervisor restarts what fails unexpectedly; the watchdog notices silent stalls."""

from __future__ import annotations

import asyncio

from engine_builders import Log

from litetool.engine.runtime import supervisor
from litetool.engine.runtime.status import StatusBoard
from litetool.engine.runtime.supervisor import Watchdog, supervised


async def test_a_failing_task_is_logged_with_its_traceback_and_restarted(monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF_INITIAL_SECONDS", 0.01)
    board, log, runs = StatusBoard(version="t"), Log(), []

    async def body() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise KeyError(f"boom {len(runs)}")

    await supervised("sync", body, stop=asyncio.Event(), board=board, log=log, db_path="db")
    assert len(runs) == 3
    failed = log.fields("task failed")
    assert [f["error"] for f in failed] == ["KeyError: 'boom 1'", "KeyError: 'boom 2'"]
    assert "Traceback" in failed[0]["traceback"] and "boom 1" in failed[0]["traceback"]
    status = board.databases()[0]
    assert status.task_failures == 2
    assert "sync failed unexpectedly" in status.last_error


async def test_once_stopping_a_failing_task_gets_a_few_tries_then_gives_up():
    board, log, runs = StatusBoard(version="t"), Log(), []
    stop = asyncio.Event()
    stop.set()

    async def body() -> None:
        runs.append(1)
        raise RuntimeError("final sync keeps failing")

    await asyncio.wait_for(
        supervised("replica r", body, stop=stop, board=board, log=log, db_path="db"), 5
    )
    assert len(runs) == supervisor.FINAL_ATTEMPTS
    assert log.fields("task gave up")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_watchdog_flags_a_replica_that_publishes_nothing_while_the_database_moves():
    board, log, clock = StatusBoard(version="t"), Log(), Clock()
    board.update_replica("db", "r", url="u")
    dog = Watchdog(board, log, "db", clock=clock)
    # Caught up: never stalled, however long.
    for t in range(0, 100, 5):
        clock.now = t
        dog.check(10, "g", [("r", 10, "g", 1.0, 0.0)])
    assert not dog.stalled
    # Behind from t=95 on, no progress: stalled after max(10 s, 5 sync intervals).
    for t in range(100, 105):
        clock.now = t
        dog.check(50, "g", [("r", 10, "g", 1.0, 0.0)])
    assert not dog.stalled
    clock.now = 105.5
    dog.check(50, "g", [("r", 10, "g", 1.0, 0.0)])
    assert dog.stalled == {"r"}
    assert log.fields("replication stalled")[0]["txid"] == 50
    replica = board.databases()[0].replicas[0]
    assert replica.stalled and "40 transactions waiting" in replica.last_error
    # Logged once per stall.
    clock.now = 120
    dog.check(60, "g", [("r", 10, "g", 1.0, 0.0)])
    assert len(log.fields("replication stalled")) == 1
    # Progress clears it.
    clock.now = 121
    dog.check(60, "g", [("r", 30, "g", 1.0, 0.0)])
    assert not dog.stalled and log.fields("replication resumed")
    assert not board.databases()[0].replicas[0].stalled


def test_the_watchdog_counts_a_long_snapshot_upload_as_progress():
    board, log, clock = StatusBoard(version="t"), Log(), Clock()
    dog = Watchdog(board, log, "db", clock=clock)
    for t in range(0, 60):
        clock.now = t
        dog.check(50, "g", [("r", -1, None, 1.0, t - 1.0)])  # stored a chunk a second ago
    assert not dog.stalled
    clock.now = 75
    dog.check(50, "g", [("r", -1, None, 1.0, 59.0)])
    assert dog.stalled == {"r"}


def test_a_long_sync_interval_waits_five_intervals():
    board, log, clock = StatusBoard(version="t"), Log(), Clock()
    dog = Watchdog(board, log, "db", clock=clock)
    dog.check(5, "g", [("r", 1, "g", 60.0, 0.0)])
    clock.now = 299
    dog.check(9, "g", [("r", 1, "g", 60.0, 0.0)])
    assert not dog.stalled
    clock.now = 301
    dog.check(9, "g", [("r", 1, "g", 60.0, 0.0)])
    assert dog.stalled == {"r"}
