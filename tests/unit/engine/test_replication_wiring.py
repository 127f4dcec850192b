"""One database's replication, wired from its real parts (a real database, its
spool, file replicas): ``run`` ends with a final capture and a final sync of
every replica and lets go of the database and its spool; at stop it counts
the committed transactions that reached no replica; a replica owned by
another litetool stops it with that error; the watchdog flags a replica that
publishes nothing while transactions wait; ``validate`` checks every replica
against the live database. Every replica that holds the database restores to
exactly the application's rows."""

from __future__ import annotations

import asyncio

import pytest
from engine_builders import Log, insert, replication_of, unreachable_replica
from join_builders import events_of
from sync_builders import reopen_capture_side, replica_sync, restore_with_cli, rows_of

from litetool.engine import replication as replication_module
from litetool.engine.runtime import supervisor
from litetool.engine.runtime.status import DatabaseState, EventKind, ReplicaState
from litetool.errors import ReplicaConflict


def database_status(replication):
    (status,) = replication.board.databases()
    return status


async def run_while_writing(replication, app, values) -> None:
    """Run the replication, commit *values* (one transaction each) while it
    runs, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(replication.run(stop))
    await asyncio.to_thread(insert, app, *values)
    stop.set()
    await asyncio.wait_for(task, 60)


def test_a_run_stopped_at_once_leaves_the_rows_on_the_replica_and_the_database_free(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=5)
    stop = asyncio.Event()
    stop.set()
    asyncio.run(asyncio.wait_for(replication.run(stop), 60))
    status = database_status(replication)
    assert (status.state, status.unreplicated) == (DatabaseState.STOPPED, 0)
    assert replication.unreplicated == 0
    assert [(r.name, r.state) for r in status.replicas] == [("m", ReplicaState.STOPPED)]
    assert log.fields("stopped with unreplicated transactions") == []
    # The spool's lock is released and the stop was clean: a new start resumes.
    restart_log = Log()
    side = reopen_capture_side(tmp_path / "app.db", restart_log)
    try:
        assert side.generation == replication.generation
        assert restart_log.fields("resumed")
    finally:
        side.close()
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    app.close()


def test_commits_made_while_running_reach_the_replica_by_the_final_sync(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=2)
    asyncio.run(run_while_writing(replication, app, range(3, 43)))
    assert replication.unreplicated == 0
    assert database_status(replication).unreplicated == 0
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    app.close()


def test_transactions_on_no_replica_are_counted_and_logged_at_stop(tmp_path):
    log = Log()
    replication, app, _urls = replication_of(
        tmp_path, log, rows=2, replicas=[unreachable_replica("down")]
    )
    asyncio.run(run_while_writing(replication, app, range(3, 13)))
    txid = replication.side.capture.txid
    # No replica has even the snapshot: every captured transaction counts, at least 1.
    assert replication.unreplicated == max(1, txid)
    assert database_status(replication).unreplicated == replication.unreplicated
    (stopped,) = log.fields("stopped with unreplicated transactions")
    assert (stopped["count"], stopped["txid"]) == (replication.unreplicated, txid)
    app.close()


def test_a_replica_that_works_holds_every_transaction_while_another_fails(tmp_path):
    log = Log()
    good = (tmp_path / "replica").as_uri()
    replicas = [
        unreachable_replica("down"),
        {"url": good, "name": "up", "sync-interval": "0s"},
    ]
    replication, app, _urls = replication_of(tmp_path, log, rows=2, replicas=replicas)
    asyncio.run(run_while_writing(replication, app, range(3, 13)))
    assert replication.unreplicated == 0
    assert log.fields("stopped with unreplicated transactions") == []
    replicas = database_status(replication).replicas
    states = {r.name: (r.state, r.last_error is None) for r in replicas}
    assert states == {"down": (ReplicaState.STOPPED, False), "up": (ReplicaState.STOPPED, True)}
    assert restore_with_cli(good, tmp_path / "restored.db") == rows_of(app)
    app.close()


def test_the_count_of_unreplicated_transactions_follows_the_best_replica(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=2, opened=True)
    try:
        assert replication._count_unreplicated() == 1  # no replica: at least 1
        sync = replica_sync(replication, url, log)
        asyncio.run(sync._start())
        capture = replication.side.capture
        insert(app, 3, 4, 5, 6)
        capture.capture_once()
        assert replication._count_unreplicated() == capture.txid - sync.progress.txid == 4
        assert asyncio.run(sync.sync_once()) is True
        assert replication._count_unreplicated() == 0
        # The replica's txids belong to the generation before: they count for nothing.
        replication.side.new_generation("the WAL was rewritten")
        insert(app, 7, 8)
        capture.capture_once()
        assert replication._count_unreplicated() == capture.txid == 2
        asyncio.run(sync._final_sync())  # a new generation on the replica, current
        assert replication._count_unreplicated() == 0
        assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    finally:
        replication.side.close()
        app.close()


def test_a_replica_owned_by_another_litetool_stops_the_run_with_that_error(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=4)
    conflict = ReplicaConflict("the replica's lease is held by writer other:1")
    replication.fenced("m", conflict)
    replication.fenced("m", ReplicaConflict("a second report"))  # the first one stands

    async def main():
        await asyncio.wait_for(replication.run(asyncio.Event()), 60)  # never stopped

    with pytest.raises(ReplicaConflict) as raised:
        asyncio.run(main())
    assert raised.value is conflict
    (owned,) = log.fields("another litetool owns the replica")
    assert owned["replica"] == "m"
    assert database_status(replication).state == DatabaseState.STOPPED
    # The run ended cleanly all the same: the database and its spool are free.
    side = reopen_capture_side(tmp_path / "app.db", Log())
    side.close()
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    app.close()


async def test_the_watchdog_flags_the_replica_that_publishes_nothing_while_others_do(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(replication_module, "WATCHDOG_SECONDS", 0.01)
    monkeypatch.setattr(supervisor, "STALL_MIN_SECONDS", 0.0)
    log = Log()
    replicas = [
        {"url": (tmp_path / "lagging").as_uri(), "name": "lagging"},
        {"url": (tmp_path / "current").as_uri(), "name": "current"},
    ]
    replication, app, (lagging_url, current_url) = replication_of(
        tmp_path, log, rows=2, replicas=replicas, opened=True
    )
    try:
        lagging = replica_sync(replication, lagging_url, log, name="lagging", sync_interval=0.0)
        current = replica_sync(replication, current_url, log, name="current", sync_interval=0.0)
        for sync in (lagging, current):
            await sync._start()
        insert(app, 3, 4, 5)
        replication.side.capture.capture_once()
        assert await current.sync_once() is True
        stop = asyncio.Event()
        watchdog = asyncio.create_task(replication._watchdog_loop(stop))
        assert await asyncio.to_thread(log.seen("replication stalled").wait, 10)
        stop.set()
        await asyncio.wait_for(watchdog, 10)
        (stalled,) = log.fields("replication stalled")
        assert (stalled["replica"], stalled["published_txid"], stalled["txid"]) == ("lagging", 0, 3)
        flags = {r.name: r.stalled for r in database_status(replication).replicas}
        assert flags == {"lagging": True, "current": False}
        # Its final sync brings the lagging replica current.
        await lagging._final_sync()
        await current._final_sync()
    finally:
        replication.side.close()
    for url, name in ((lagging_url, "lagging"), (current_url, "current")):
        restored = await asyncio.to_thread(restore_with_cli, url, tmp_path / f"{name}.db")
        assert restored == rows_of(app)
    app.close()


async def test_validate_checks_every_replica_against_the_live_database(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=3, opened=True)
    try:
        sync = replica_sync(replication, url, log)
        await sync._start()
        insert(app, 4, 5)
        replication.side.capture.capture_once()
        await sync.sync_once()
        (result,) = await replication.validate()
        assert result.ok, result.message
        assert result.txid == replication.txid == 2
        (event,) = events_of(replication.board, EventKind.VALIDATION)
        assert event.replica == "m"
        (logged,) = log.fields("validation")
        assert (logged["ok"], logged["txid"]) == (True, 2)
    finally:
        replication.side.close()
    assert await asyncio.to_thread(restore_with_cli, url, tmp_path / "restored.db") == rows_of(app)
    app.close()


async def test_a_validation_interval_runs_validation_while_replicating(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(
        tmp_path, log, rows=3, **{"validation-interval": "50ms"}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(replication.run(stop))
    try:
        assert await asyncio.to_thread(log.seen("validation").wait, 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    validations = log.fields("validation")
    assert validations and all(v["ok"] for v in validations), validations
    assert await asyncio.to_thread(restore_with_cli, url, tmp_path / "restored.db") == rows_of(app)
    app.close()
