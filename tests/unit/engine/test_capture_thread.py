"""The capture thread of one database, over a real database, its real spool and
a real file replica: a pass of the loop captures what the application
committed, announces it once as a "captured" range (status, events, the
replica's wake-up), also what was captured under a snapshot's lock, counts a
new generation from its base, runs the checkpoint policy and the spool cap,
and reports a failed capture on the board and retries it; the replica
restores to exactly the application's rows."""

from __future__ import annotations

import asyncio
import threading

import pytest
from engine_builders import Log, insert, replication_of
from join_builders import events_of, last_seq, one_pass
from sync_builders import replica_sync, restore_with_cli, rows_of

from litetool.engine import capture_thread as capture_thread_module
from litetool.engine.runtime.status import DatabaseState, EventKind
from litetool.errors import DatabaseError


@pytest.fixture
def replicated(tmp_path):
    """The replication of ``app.db`` (3 rows, in the generation's base image)
    with its capture side open, the application, the replica's URL and its
    sync, started (the replica holds the snapshot at txid 0)."""
    log = Log()
    replication, app, (url,) = replication_of(tmp_path, log, rows=3, opened=True)
    sync = replica_sync(replication, url, log)
    asyncio.run(sync._start())
    yield replication, app, url, sync, log
    replication.side.close()
    app.close()


def database_status(replication):
    (status,) = replication.board.databases()
    return status


def test_a_pass_captures_announces_one_range_and_wakes_the_replica(replicated, tmp_path):
    replication, app, url, sync, _log = replicated
    loop = asyncio.new_event_loop()
    replication.side.loop = loop
    before = last_seq(replication.board)
    insert(app, 4, 5, 6, 7, 8)
    assert not sync.wake.is_set()
    one_pass(replication.capture_thread)
    capture = replication.side.capture
    assert capture.txid == 5
    (captured,) = events_of(replication.board, EventKind.CAPTURED, before)
    assert (captured.data["first_txid"], captured.data["last_txid"]) == (1, 5)
    assert captured.data["time_us"] == capture.last_time_us
    status = database_status(replication)
    assert (status.state, status.txid, status.last_commit_us) == (
        DatabaseState.REPLICATING,
        5,
        capture.last_time_us,
    )
    # The replica's task is woken (on its event loop) and publishes what was announced.
    loop.run_until_complete(asyncio.wait_for(sync.wake.wait(), 10))
    loop.run_until_complete(sync.sync_once())
    loop.close()
    assert sync.progress.txid == 5
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_captures_between_status_refreshes_are_announced_as_one_range(replicated, monkeypatch):
    replication, app, _url, _sync, _log = replicated
    thread, capture = replication.capture_thread, replication.side.capture
    # Commits stream in: after an announcement, the next comes only after the
    # interval (here: never), unless forced (a capture found nothing, or the loop stops).
    monkeypatch.setattr(capture_thread_module, "STATUS_INTERVAL_SECONDS", 3600.0)
    before = last_seq(replication.board)
    batches = []
    for values in ((4, 5), (6,), (7, 8, 9)):
        insert(app, *values)
        batch = capture.capture_once()
        batches.append((batch.first_txid, batch.last_txid))
        thread._captured(batch)
        thread._refresh_status(force=False)
    assert batches == [(1, 2), (3, 3), (4, 6)]

    def announced():
        return [
            (e.data["first_txid"], e.data["last_txid"])
            for e in events_of(replication.board, EventKind.CAPTURED, before)
        ]

    assert announced() == [(1, 2)]  # the first at once, the rest wait
    assert database_status(replication).txid == 2
    thread._refresh_status(force=True)
    assert announced() == [(1, 2), (3, 6)]
    assert database_status(replication).txid == 6
    # Announced once: a later refresh repeats nothing.
    thread._refresh_status(force=True)
    assert announced() == [(1, 2), (3, 6)]


def test_without_a_pause_between_refreshes_each_capture_is_announced_at_once(
    replicated, monkeypatch
):
    replication, app, _url, _sync, _log = replicated
    thread, capture = replication.capture_thread, replication.side.capture
    monkeypatch.setattr(capture_thread_module, "STATUS_INTERVAL_SECONDS", 0.0)
    before = last_seq(replication.board)
    for values in ((4, 5), (6,)):
        insert(app, *values)
        thread._captured(capture.capture_once())
        thread._refresh_status(force=False)
    ranges = [
        (e.data["first_txid"], e.data["last_txid"])
        for e in events_of(replication.board, EventKind.CAPTURED, before)
    ]
    assert ranges == [(1, 2), (3, 3)]


def test_transactions_captured_under_a_snapshots_lock_are_announced(replicated, tmp_path):
    replication, app, url, sync, _log = replicated
    thread, capture = replication.capture_thread, replication.side.capture
    insert(app, 4, 5)
    thread._captured(capture.capture_once())
    thread._refresh_status(force=True)
    before = last_seq(replication.board)
    # A snapshot captures the WAL's tail under the write lock, outside the loop's captures.
    insert(app, 6, 7, 8)
    source = capture.open_snapshot()
    snapshot_txid = source.txid
    source.close()
    assert snapshot_txid == capture.txid == 5
    thread._refresh_status(force=True)
    (captured,) = events_of(replication.board, EventKind.CAPTURED, before)
    assert (captured.data["first_txid"], captured.data["last_txid"]) == (3, 5)
    assert database_status(replication).txid == 5
    assert asyncio.run(sync.sync_once()) is True
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_a_new_generation_is_announced_from_its_base(replicated):
    replication, app, _url, _sync, _log = replicated
    thread, side = replication.capture_thread, replication.side
    insert(app, 4, 5, 6, 7)
    thread._captured(side.capture.capture_once())
    thread._refresh_status(force=True)
    assert database_status(replication).txid == 4
    # What the loop does when capture loses continuity: a new generation, whose
    # txids count from its base again.
    side.new_generation("the WAL was rewritten")
    thread._forget_announcements()
    assert side.capture.txid == 0
    before = last_seq(replication.board)
    insert(app, 8, 9)
    source = side.capture.open_snapshot()  # captured outside the loop's captures
    source.close()
    thread._refresh_status(force=True)
    (captured,) = events_of(replication.board, EventKind.CAPTURED, before)
    assert (captured.data["first_txid"], captured.data["last_txid"]) == (1, 2)
    status = database_status(replication)
    assert (status.generation, status.txid) == (side.generation, 2)


@pytest.mark.parametrize(
    "error, shown",
    [
        (OSError(5, "Input/output error"), "Input/output error"),
        (DatabaseError("the WAL cannot be read"), "the WAL cannot be read"),
        (RuntimeError("a bug"), "unexpected RuntimeError: a bug"),
    ],
)
def test_a_failed_capture_is_reported_on_the_board_and_in_the_log(replicated, error, shown):
    replication, app, _url, _sync, log = replicated
    side = replication.side

    def failing():
        raise error

    side.capture.capture_once = failing  # the one capture of the pass fails
    before = last_seq(replication.board)
    insert(app, 4)
    one_pass(replication.capture_thread)
    status = database_status(replication)
    assert status.state == DatabaseState.ERROR
    assert status.capture_errors == 1
    assert shown in status.last_error
    (failed,) = log.fields("capture failed")
    assert shown in failed["error"]
    errors = events_of(replication.board, EventKind.ERROR, before)
    assert any(shown in event.message for event in errors)
    # An exception nobody expects is also a task failure, with its traceback.
    unexpected = isinstance(error, RuntimeError)
    assert (status.task_failures == 1) is unexpected
    assert bool(log.fields("task failed")) is unexpected
    assert all("a bug" in f["traceback"] for f in log.fields("task failed"))


def test_a_failed_capture_is_retried_and_the_error_clears(replicated, tmp_path):
    replication, app, url, sync, log = replicated
    thread, capture = replication.capture_thread, replication.side.capture
    real = capture.capture_once
    calls: list[str] = []
    retried = threading.Event()

    def fails_once():
        if not calls:
            calls.append("failed")
            raise OSError(5, "Input/output error")
        batch = real()
        if batch is not None:
            calls.append("captured")
            retried.set()
        return batch

    capture.capture_once = fails_once
    insert(app, 4, 5, 6)
    loop = threading.Thread(target=thread.run)
    loop.start()
    try:
        assert retried.wait(30), calls
    finally:
        thread.stop()
        loop.join(30)
    assert not loop.is_alive()
    assert calls[:2] == ["failed", "captured"]
    status = database_status(replication)
    assert status.capture_errors == 1
    assert (status.state, status.last_error, status.txid) == (DatabaseState.REPLICATING, None, 3)
    assert len(log.fields("capture failed")) == 1
    assert asyncio.run(sync.sync_once()) is True
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_the_loop_runs_the_checkpoint_policy_and_capture_follows_the_wal_restart(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(
        tmp_path,
        log,
        rows=3,
        opened=True,
        **{"checkpoint-soft-pages": 8, "checkpoint-hard-pages": 8},
    )
    try:
        sync = replica_sync(replication, url, log)
        asyncio.run(sync._start())
        thread = replication.capture_thread
        insert(app, *range(4, 24))  # 20 transactions: more frames than the hard threshold
        loop = threading.Thread(target=thread.run)
        loop.start()
        try:
            assert log.seen("checkpoint").wait(30), [line[1] for line in log.lines]
            insert(app, *range(24, 30))  # the WAL restarts under these
        finally:
            thread.stop()
            loop.join(30)
        assert not loop.is_alive()
        status = database_status(replication)
        assert sum(status.checkpoints.values()) >= 1
        assert events_of(replication.board, EventKind.CHECKPOINT)
        assert replication.side.capture.txid == 26 == status.txid
        assert asyncio.run(sync.sync_once()) is True
        assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    finally:
        replication.side.close()
        app.close()


def test_a_pass_detaches_the_replica_holding_the_spool_past_its_cap(tmp_path):
    log = Log()
    replication, app, (url,) = replication_of(
        tmp_path, log, rows=3, opened=True, **{"spool-max-bytes": "32KiB"}
    )
    try:
        sync = replica_sync(replication, url, log)
        asyncio.run(sync._start())
        assert not sync.progress.detached
        insert(app, *range(4, 30))  # 26 transactions of a page or more each: over 100 KiB
        one_pass(replication.capture_thread)
        assert sync.progress.detached
        (full,) = log.fields("spool full")
        assert full["replica"] == "m"
        # Detached, the replica ends current from a new snapshot.
        asyncio.run(sync._final_sync())
        assert sync.progress.txid == replication.txid
        assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    finally:
        replication.side.close()
        app.close()
