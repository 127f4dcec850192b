"""The capture side of a real database: opening (and refusing), resuming the
spooled generation or starting a new one with the reason, following a database
file replaced under it, and closing without checkpointing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass

import pytest
from engine_builders import Log, insert, open_capture_side
from sync_builders import digests_of_captured_image, reopen_capture_side, rows_of

from litetool.engine.capture import capture_side as capture_side_module
from litetool.engine.sync.replica_progress import ReplicaProgress
from litetool.errors import DatabaseError


@pytest.fixture
def log():
    return Log()


@pytest.fixture
def opened(tmp_path, log):
    """An open capture side of ``app.db`` (3 rows before it opened) and the application."""
    side, app = open_capture_side(tmp_path, "memory://side", log, rows=3)
    yield side, app
    side.close()
    app.close()


def saved_state(side) -> dict:
    return json.loads((side.spool.directory / "state.json").read_text())


def stop_cleanly(side) -> None:
    """A clean stop, as the capture thread ends: last capture, seal, close."""
    side.capture.capture_once()
    side.keeper.seal_at_stop(side.capture, side.generation)
    side.close()


# -- opening ---------------------------------------------------------------------------------


def test_a_first_run_starts_a_generation_that_says_so(opened, log):
    side, _app = opened
    assert side.generation
    assert side.generation_reason == "first run"
    state = saved_state(side)
    assert (state["generation"], state["reason"]) == (side.generation, "first run")
    # What was committed before litetool opened is the generation's base.
    assert side.capture.txid == 0 and side.spool.last is None
    (status,) = side.board.databases()
    assert (status.state, status.generation) == ("replicating", side.generation)
    assert [f["reason"] for f in log.fields("new generation")] == ["first run"]


def test_a_path_that_is_not_a_database_is_refused_before_anything_is_created(tmp_path, log):
    missing = tmp_path / "missing.db"
    with pytest.raises(DatabaseError, match="database not found"):
        reopen_capture_side(missing, log)
    text = tmp_path / "notes.db"
    text.write_text("this is not a database, it is a text file of some length\n")
    with pytest.raises(DatabaseError, match="is not a SQLite database"):
        reopen_capture_side(text, log)
    directory = tmp_path / "dir.db"
    directory.mkdir()
    with pytest.raises(DatabaseError, match="is not a file"):
        reopen_capture_side(directory, log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.db", "notes.db"]
    assert text.read_text().startswith("this is not a database")


def test_an_open_that_fails_after_creating_the_spool_removes_it(tmp_path, log):
    damaged = tmp_path / "damaged.db"
    # The right first 16 bytes, then nothing SQLite can read as a database.
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    with pytest.raises(DatabaseError, match="cannot open"):
        reopen_capture_side(damaged, log)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("damaged.db-")) == [
        "damaged.db"
    ]


def test_a_spool_in_use_by_another_litetool_is_refused_and_left_alone(opened, log):
    side, app = opened
    insert(app, 4)
    side.capture.capture_once()
    with pytest.raises(DatabaseError, match="already being replicated"):
        reopen_capture_side(side.db_path, log)
    # The first one goes on with its spool untouched.
    assert saved_state(side)["generation"] == side.generation
    insert(app, 5)
    batch = side.capture.capture_once()
    assert batch is not None and (batch.first_txid, batch.last_txid) == (2, 2)


# -- resuming or a new generation --------------------------------------------------------------


def test_after_a_clean_stop_the_same_generation_resumes_at_the_captured_txid(opened, log):
    side, app = opened
    insert(app, 4, 5)
    stop_cleanly(side)
    generation = side.generation
    again = reopen_capture_side(side.db_path, log)
    try:
        assert (again.generation, again.capture.txid) == (generation, 2)
        assert again.generation_reason == "first run"  # the generation's own reason
        (resumed,) = log.fields("resumed")
        assert (resumed["generation"], resumed["txid"], resumed["proof"]) == (generation, 2, "seal")
        assert len(log.fields("new generation")) == 1  # the first run's only
        insert(app, 6)
        batch = again.capture.capture_once()
        assert batch is not None and (batch.first_txid, batch.last_txid) == (3, 3)
    finally:
        again.close()


def test_commits_made_while_litetool_was_stopped_are_captured_when_it_resumes(opened, log):
    side, app = opened
    insert(app, 4)
    stop_cleanly(side)
    insert(app, 5, 6, 7)  # litetool is not running: the WAL continues
    again = reopen_capture_side(side.db_path, log)
    try:
        assert again.generation == side.generation
        assert log.fields("resumed")[0]["new_transactions"] == 3
        # Resuming captured them, as three transactions after the spooled one.
        assert again.capture.txid == 4
        located = again.spool.locate_after(1, max_bytes=1 << 30)
        located.close()
        assert (located.records[0].first_txid, located.records[-1].last_txid) == (2, 4)
        # Stamped with the WAL's modification time: when they were written.
        wal = again.capture.wal_path
        assert again.capture.last_time_us == os.stat(wal).st_mtime_ns // 1000
        assert again.capture.capture_once() is None
    finally:
        again.close()


def test_without_a_seal_or_page_digests_a_new_generation_says_it_cannot_prove_continuity(
    opened, log
):
    side, app = opened
    insert(app, 4, 5)
    side.capture.capture_once()
    side.close()  # no seal: a kill, say
    again = reopen_capture_side(side.db_path, log)
    try:
        assert again.generation and again.generation != side.generation
        assert again.generation_reason.startswith(
            "cannot prove the database is unchanged since litetool stopped"
        )
        assert saved_state(again)["reason"] == again.generation_reason
        # The old generation's records are gone; the new one starts at its base.
        assert again.spool.last is None and again.capture.txid == 0
        assert list((again.spool.directory / "log").glob("*.spool")) == []
        assert log.fields("resumed") == []
    finally:
        again.close()


def test_page_digests_prove_continuity_without_a_seal(opened, log):
    side, app = opened
    insert(app, 4, 5)
    side.capture.capture_once()
    digests_of_captured_image(side)
    side.close()  # no seal; the digests stay on disk
    again = reopen_capture_side(side.db_path, log)
    try:
        assert (again.generation, again.capture.txid) == (side.generation, 2)
        assert log.fields("resumed")[0]["proof"] == "digests"
    finally:
        again.close()


def test_a_database_changed_while_stopped_starts_a_new_generation_naming_the_page(opened, log):
    side, app = opened
    insert(app, 4, 5)
    side.capture.capture_once()
    digests_of_captured_image(side)
    side.close()
    # While litetool is down: a change, checkpointed into the database file
    # and the WAL truncated, so no WAL frame tells of it.
    app.execute("UPDATE t SET x = x + 100")
    busy, _log_frames, _done = app.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    again = reopen_capture_side(side.db_path, log)
    try:
        assert again.generation != side.generation
        reason = again.generation_reason
        assert reason.startswith("the database changed while litetool was not running"), reason
        assert "differs from the replicated image at txid 2" in reason
    finally:
        again.close()


def test_a_page_size_changed_while_stopped_starts_a_new_generation_naming_both_sizes(opened, log):
    side, app = opened
    before = app.execute("PRAGMA page_size").fetchone()[0]
    stop_cleanly(side)
    after = before // 4
    app.execute("PRAGMA journal_mode=DELETE")
    app.execute(f"PRAGMA page_size={after}")
    app.execute("VACUUM")
    app.execute("PRAGMA journal_mode=WAL")
    assert app.execute("PRAGMA page_size").fetchone()[0] == after
    again = reopen_capture_side(side.db_path, log)
    try:
        assert again.generation != side.generation
        assert again.generation_reason == (
            f"the page size changed from {before} to {after} while litetool was not running"
        )
        assert again.capture.page_size == after
    finally:
        again.close()


@dataclass
class PublishedReplica:
    """What the capture side reads of a replica task: its progress."""

    progress: ReplicaProgress

    def notify(self, loop) -> None:  # pragma: no cover - no event loop here
        raise AssertionError("no event loop runs")


def test_a_new_generation_counts_the_transactions_no_replica_published(tmp_path, log):
    side, app = open_capture_side(tmp_path, "memory://side", log, rows=1)
    try:
        side.replicas += [
            PublishedReplica(ReplicaProgress(side.generation, side.generation, 2)),
            PublishedReplica(ReplicaProgress(side.generation, side.generation, 4)),
            PublishedReplica(ReplicaProgress()),  # no place yet: not counted
        ]
        insert(app, 2, 3, 4, 5, 6)
        side.capture.capture_once()
        assert side.capture.txid == 5
        side.new_generation("a test of superseding")
        (superseded,) = log.fields("unpublished transactions superseded")
        assert superseded["count"] == 5 - 2  # behind the replica furthest behind
        assert side.generation_reason == "a test of superseding"
        assert side.capture.txid == 0 and side.spool.last is None
    finally:
        side.close()
        app.close()


# -- a database file replaced while litetool runs ----------------------------------------------


@pytest.fixture
def every_check(monkeypatch):
    """The path's identity is checked on every call (not once per half second)."""
    monkeypatch.setattr(capture_side_module, "IDENTITY_CHECK_SECONDS", 0.0)


def replace_with(db, copy) -> None:
    """Move *copy* over the database; its old WAL and shared memory go."""
    os.replace(copy, db)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def test_the_identity_check_tells_a_replaced_file_from_the_same_or_a_missing_one(
    opened, log, every_check, tmp_path
):
    side, app = opened
    assert not side.file_replaced()
    insert(app, 4)
    assert not side.file_replaced()  # written to, still the same file
    moved = tmp_path / "moved.db"
    os.rename(side.db_path, moved)
    assert not side.file_replaced()  # nothing there: nothing to follow yet
    assert not side.file_replaced()
    assert len(log.fields("database file missing")) == 1  # said once
    shutil.copy(moved, side.db_path)  # another file under the path
    assert side.file_replaced()


def test_a_replaced_file_that_does_not_continue_starts_a_generation_saying_so(
    opened, log, every_check, tmp_path
):
    side, app = opened
    older = tmp_path / "older.db"
    copy = sqlite3.connect(older)
    app.backup(copy)  # rows 1..3
    copy.close()
    insert(app, 4, 5)
    side.capture.capture_once()
    old_generation = side.generation
    app.close()
    replace_with(side.db_path, older)
    assert side.file_replaced()
    side.reopen()
    assert not side.reopen_pending
    assert side.generation != old_generation
    reason = side.generation_reason
    assert reason.startswith("the database file was replaced while litetool was running: ")
    assert "while litetool was not running" not in reason
    assert log.fields("database file replaced")
    assert saved_state(side)["generation"] == side.generation
    assert not side.file_replaced()  # the new file is the one open now
    # What the application writes to the new file is captured.
    app = sqlite3.connect(side.db_path, isolation_level=None)
    try:
        assert rows_of(app) == [(1,), (2,), (3,)]
        insert(app, 40, 50)
        batch = side.capture.capture_once()
        assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 2)
    finally:
        app.close()


def test_a_replaced_file_at_the_latest_point_resumes_with_the_digests_in_memory(
    opened, log, every_check, tmp_path
):
    side, app = opened
    insert(app, 4, 5)
    side.capture.capture_once()
    digests_of_captured_image(side)
    generation = side.generation
    app.close()
    # A byte copy of the database file under the same path: its WAL stays.
    copy = tmp_path / "copy.db"
    shutil.copy(side.db_path, copy)
    os.replace(copy, side.db_path)
    assert side.file_replaced()
    side.reopen()
    assert (side.generation, side.capture.txid) == (generation, 2)
    assert log.fields("resumed")[-1]["proof"] == "digests"
    app = sqlite3.connect(side.db_path, isolation_level=None)
    try:
        insert(app, 6)
        batch = side.capture.capture_once()
        assert batch is not None and (batch.first_txid, batch.last_txid) == (3, 3)
    finally:
        app.close()


def test_a_reopen_that_cannot_open_the_new_file_waits_for_one(opened, log, every_check, tmp_path):
    side, app = opened
    app.close()
    moved = tmp_path / "moved.db"
    os.rename(side.db_path, moved)
    side.reopen()  # the path names nothing
    assert side.reopen_pending
    assert log.fields("cannot open the new database file")
    shutil.copy(moved, side.db_path)
    side.reopen()
    assert not side.reopen_pending
    assert side.generation_reason.startswith("the database file was replaced")
    assert len(log.fields("database file replaced")) == 1  # said once for both tries


# -- closing -----------------------------------------------------------------------------------


def test_close_leaves_the_wal_as_it_was_and_frees_the_spool(opened, log):
    side, app = opened
    insert(app, 4, 5, 6)
    side.capture.capture_once()
    wal = side.db_path.with_name(side.db_path.name + "-wal")
    wal_bytes = wal.read_bytes()
    assert wal_bytes
    side.close()
    assert wal.read_bytes() == wal_bytes  # no checkpoint, no truncation
    assert rows_of(side.db_path) == [(1,), (2,), (3,), (4,), (5,), (6,)]
    again = reopen_capture_side(side.db_path, log)  # the spool's lock is free
    again.close()
