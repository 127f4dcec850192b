"""The read fence on a real database, against an application in another process:
what its read marks let SQLite checkpoint and restart, its write lock, its
controlled checkpoints and its descriptors."""

from __future__ import annotations

import os
import sqlite3
import time

import fence_builders
import pytest
from fence_builders import (
    PAGE,
    app_can_write,
    app_checkpoint,
    app_connection,
    file_bytes,
    grow,
    make_db,
    open_fence,
    run_app,
    start_app,
    stop_app,
    wal_salts,
)
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.capture.fence import CheckpointResult, ReadFence, WriteLockBusy
from litetool.errors import DatabaseError

db, fence = fence_builders.db, fence_builders.fence  # the database of 5 rows, its fence


@pytest.fixture
def app(db):
    """The application's connection in this process (for the write lock, which
    SQLite orders between connections of one process as between processes)."""
    with app_connection(db) as conn:
        # Connected to the WAL: the fence's connections are never the database's last.
        conn.execute("SELECT count(*) FROM t").fetchone()
        yield conn


# -- opening -----------------------------------------------------------------------------


def test_open_switches_a_rollback_journal_database_to_wal(tmp_path):
    db = make_db(tmp_path / "app.db", wal=False, rows=3)
    fence = open_fence(db)
    try:
        assert fence.switched_to_wal
        assert run_app(db, "PRAGMA journal_mode")[0] == [["wal"]]
        assert run_app(db, "SELECT count(*) FROM t")[0] == [[3]]
    finally:
        fence.close()


def test_open_leaves_a_wal_database_as_it_is(fence, db):
    assert not fence.switched_to_wal
    assert run_app(db, "PRAGMA journal_mode")[0] == [["wal"]]


def test_open_refuses_a_missing_database_and_does_not_create_one(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(DatabaseError, match="not found"):
        ReadFence(path).open()
    assert not path.exists()


def test_a_failed_open_holds_nothing(tmp_path):
    # A reader of a rollback-journal database keeps it from switching to WAL
    # mode; the fence gives up and lets go of every lock it took meanwhile.
    db = make_db(tmp_path / "app.db", wal=False, rows=1)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    fence = ReadFence(db, busy_timeout_ms=0)
    with pytest.raises(DatabaseError, match="cannot open"):
        fence.open()
    reader.execute("COMMIT")
    # A commit in rollback mode needs every other shared lock gone.
    reader.execute("PRAGMA busy_timeout=0")
    reader.execute("INSERT INTO t(data) VALUES (x'01')")
    reader.close()
    assert run_app(db, "PRAGMA journal_mode")[0] == [["delete"]]


def test_page_size_is_the_databases(fence):
    assert fence.page_size() == PAGE


# -- the fence ---------------------------------------------------------------------------


def test_a_mark_on_frames_stops_restarts_and_limits_checkpoints_to_it(fence, db):
    run_app(db, grow(20))
    busy, marked, done = app_checkpoint(db, "PASSIVE")
    assert marked > 0
    fence.advance()  # the mark: the end of the WAL now
    run_app(db, grow(20))
    salts = wal_salts(db)
    busy, frames, done = app_checkpoint(db, "RESTART")
    assert busy == 1
    assert frames > marked
    assert done == marked  # backfilled up to the mark, no further
    run_app(db, grow(5))
    assert wal_salts(db) == salts  # not restarted: the new frames were appended
    assert app_checkpoint(db, "PASSIVE")[1] > frames


def test_without_the_fence_the_same_checkpoint_restarts_the_wal(fence, db, app):
    # The counterpart of the test above: what the fence prevents does happen.
    run_app(db, grow(20))
    fence.advance()
    run_app(db, grow(20))
    fence.close()
    busy, frames, done = app_checkpoint(db, "RESTART")
    assert (busy, done) == (0, frames)
    salts = wal_salts(db)
    run_app(db, grow(5))
    assert wal_salts(db) != salts


def test_a_mark_on_a_backfilled_wal_keeps_checkpoints_out_of_the_file(fence, db):
    # Opened on a WAL with nothing to backfill, the fence's reader blocks any
    # checkpoint from writing the database file: a restart can only happen of
    # a fully backfilled WAL, so at most one while the mark is held.
    run_app(db, grow(20))
    before = file_bytes(db)
    frames, done = app_checkpoint(db, "PASSIVE")[1:]
    assert done == 0
    assert frames > 0
    assert app_checkpoint(db, "TRUNCATE")[:2] == (1, frames)
    assert file_bytes(db) == before


def test_at_most_one_restart_while_a_mark_on_a_backfilled_wal_is_held(fence, db):
    run_app(db, grow(20))
    assert fence.checkpoint(lambda: None, truncate=False).complete
    salts = wal_salts(db)
    run_app(db, grow(20))  # the WAL was all backfilled: this write restarts it
    restarted = wal_salts(db)
    assert restarted != salts
    busy, frames, done = app_checkpoint(db, "RESTART")
    assert (busy, done) == (1, 0)
    run_app(db, grow(5))
    assert wal_salts(db) == restarted
    assert app_checkpoint(db, "PASSIVE")[1] > frames


def test_advance_moves_the_mark_to_the_end_of_the_wal(fence, db):
    run_app(db, grow(20))
    fence.advance()
    first = app_checkpoint(db, "PASSIVE")[1]
    run_app(db, grow(20))
    assert app_checkpoint(db, "PASSIVE")[2] == first
    fence.advance()
    run_app(db, grow(20))
    frames, done = app_checkpoint(db, "PASSIVE")[1:]
    assert first < done < frames
    fence.advance()
    assert app_checkpoint(db, "PASSIVE")[1:] == (frames, frames)


def test_closing_the_fence_lets_the_application_truncate_the_wal(fence, db, app):
    run_app(db, grow(20))
    fence.advance()
    run_app(db, grow(20))
    assert app_checkpoint(db, "TRUNCATE")[0] == 1
    fence.close()
    assert app_checkpoint(db, "TRUNCATE")[0] == 0
    assert os.path.getsize(f"{db}-wal") == 0


def test_a_new_reader_sees_the_database_as_it_was_when_it_began(fence, db):
    reader = fence.new_reader()
    try:
        assert reader.in_transaction
        run_app(db, grow(7))
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 5
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 12
    finally:
        reader.close()


# -- the write lock ----------------------------------------------------------------------


def test_write_locked_holds_off_writers_and_writes_nothing(fence, db, app):
    run_app(db, grow(3))
    version = app.execute("PRAGMA data_version").fetchone()[0]
    files = [file_bytes(f"{db}{suffix}") for suffix in ("", "-wal")]
    with fence.write_locked(timeout=1):
        assert not app_can_write(app)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            app.execute("INSERT INTO t(data) VALUES (x'01')")
    # Nothing committed by another connection, nothing written.
    assert app.execute("PRAGMA data_version").fetchone()[0] == version
    assert [file_bytes(f"{db}{suffix}") for suffix in ("", "-wal")] == files
    assert app_can_write(app)
    app.execute("INSERT INTO t(data) VALUES (x'02')")
    assert app.execute("SELECT count(*) FROM t").fetchone()[0] == 9


def test_write_locked_releases_the_lock_when_its_body_fails(fence, app):
    with pytest.raises(RuntimeError), fence.write_locked(timeout=1):
        raise RuntimeError("the body failed")
    assert app_can_write(app)


def test_write_locked_gives_up_while_the_application_holds_the_lock(fence, app):
    app.execute("BEGIN IMMEDIATE")
    app.execute("INSERT INTO t(data) VALUES (x'01')")
    taken = []
    with (
        pytest.raises(WriteLockBusy, match="cannot take the write lock"),
        fence.write_locked(timeout=0.05),
    ):
        taken.append(True)
    assert taken == []
    app.execute("COMMIT")  # the application's transaction was not disturbed
    with fence.write_locked(timeout=0.05):
        assert not app_can_write(app)


def test_write_locked_waits_the_busy_timeout_by_default(db, app):
    fence = open_fence(db, busy_timeout_ms=50)
    try:
        app.execute("BEGIN IMMEDIATE")
        with pytest.raises(WriteLockBusy), fence.write_locked():
            pass
        app.execute("ROLLBACK")
        with fence.write_locked():
            assert not app_can_write(app)
    finally:
        fence.close()


def test_write_locked_gets_in_between_back_to_back_commits(fence, db, app):
    # An application committing as fast as it can from another process.
    writer = start_app(db, grow(1, 50), busy_timeout=10, repeat=1_000_000)
    try:
        started = rows_when(app, lambda count: count > 10)
        with fence.write_locked(timeout=5):
            held = count_rows(app)
            assert held > started
            assert count_rows(app) == held
        rows_when(app, lambda count: count > held)  # the writer goes on
    finally:
        stop_app(writer)


def count_rows(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def rows_when(conn: sqlite3.Connection, condition, seconds: float = 10) -> int:
    """The row count once *condition* holds of it (another process writes)."""
    deadline = time.monotonic() + seconds
    while not condition(count := count_rows(conn)) and time.monotonic() < deadline:
        os.sched_yield()
    assert condition(count)
    return count


# -- controlled checkpoints --------------------------------------------------------------


def test_checkpoint_captures_and_settles_under_the_write_lock(fence, db, app):
    run_app(db, grow(20))
    fence.advance()
    run_app(db, grow(20))
    seen = []

    def settle():
        seen.append(("settle", app_can_write(app)))

    def capture():
        seen.append(("capture", app_can_write(app)))
        return settle

    salts = wal_salts(db)
    result = fence.checkpoint(capture, truncate=False)
    assert seen == [("capture", False), ("settle", False)]
    assert app_can_write(app)
    assert result.mode == "PASSIVE"
    assert result.complete
    assert result.wal_frames == app_checkpoint(db, "PASSIVE")[1]
    run_app(db, grow(5))
    assert wal_salts(db) != salts  # every frame backfilled: SQLite restarted the WAL


def test_checkpoint_with_truncate_empties_the_wal_file(fence, db):
    run_app(db, grow(20))
    result = fence.checkpoint(lambda: None, truncate=True)
    assert result.mode == "TRUNCATE"
    assert result.complete
    assert os.path.getsize(f"{db}-wal") == 0
    assert run_app(db, "SELECT count(*) FROM t")[0] == [[25]]


def test_after_a_checkpoint_the_fence_holds_again(fence, db):
    run_app(db, grow(20))
    assert fence.checkpoint(lambda: None, truncate=False).complete
    run_app(db, grow(20))  # restarts the WAL
    busy, frames, done = app_checkpoint(db, "TRUNCATE")
    assert (busy, done) == (1, 0)
    assert frames > 0


def test_a_failed_capture_leaves_the_lock_released_and_the_fence_held(fence, db, app):
    run_app(db, grow(20))

    def capture():
        raise OSError("the spool's disk is full")

    with pytest.raises(OSError, match="disk is full"):
        fence.checkpoint(capture, truncate=True)
    assert app_can_write(app)
    run_app(db, grow(20))
    assert app_checkpoint(db, "TRUNCATE")[0] == 1


def test_checkpoint_gives_up_while_the_application_holds_the_write_lock(fence, db, app):
    run_app(db, grow(20))
    app.execute("BEGIN IMMEDIATE")
    app.execute("INSERT INTO t(data) VALUES (x'01')")
    called = []
    result = fence.checkpoint(lambda: called.append(1), truncate=True, lock_timeout=0.05)
    assert called == []
    assert result.busy
    assert not result.complete
    assert (result.wal_frames, result.checkpointed_frames) == (-1, -1)
    app.execute("COMMIT")
    assert app.execute("SELECT count(*) FROM t").fetchone()[0] == 26


def test_backfill_checkpoints_up_to_the_mark_while_a_writer_is_at_work(fence, db, app):
    run_app(db, grow(20))
    fence.advance()
    marked = app_checkpoint(db, "PASSIVE")[1]
    run_app(db, grow(20))
    app.execute("BEGIN IMMEDIATE")
    app.execute("INSERT INTO t(data) VALUES (x'01')")
    result = fence.backfill()
    app.execute("COMMIT")
    assert result.mode == "PASSIVE"
    assert not result.busy
    assert result.checkpointed_frames == marked
    assert result.wal_frames > marked
    assert not result.complete
    fence.advance()
    assert fence.backfill().complete


# -- the checkpoint lock -----------------------------------------------------------------


def test_others_checkpoint_sees_the_applications_checkpoint_only(fence, db):
    run_app(db, grow(20))
    fence.advance()
    run_app(db, grow(20))
    assert not fence.others_checkpoint()
    fence.hold_checkpoints(True)
    assert not fence.others_checkpoint()  # the fence's own hold is not another's
    fence.hold_checkpoints(False)
    # A FULL checkpoint waits for the fence's reader, holding the checkpoint lock.
    app = start_app(db, "PRAGMA wal_checkpoint(FULL)", busy_timeout=60)
    try:
        deadline = time.monotonic() + 10
        while not fence.others_checkpoint() and time.monotonic() < deadline:
            os.sched_yield()
        assert fence.others_checkpoint()
        # Meanwhile the fence's own backfill is turned away, after its retries.
        result = fence.backfill(retry_seconds=0.01)
        assert result.busy
        assert result.wal_frames == -1
    finally:
        stop_app(app)
    assert not fence.others_checkpoint()
    assert not fence.backfill().busy


def test_closing_the_fence_releases_a_held_checkpoint_lock(fence, db, app):
    # The application's connection in this process keeps SQLite's -shm open, so
    # SQLite closing its own descriptors does not drop the lock on the fence's behalf.
    run_app(db, grow(20))
    fence.advance()
    fence.hold_checkpoints(True)
    assert app_checkpoint(db, "PASSIVE")[0] == 1
    fence.close()
    busy, frames, done = app_checkpoint(db, "PASSIVE")
    assert (busy, done) == (0, frames)


# -- descriptors -------------------------------------------------------------------------


def test_raw_fds_read_the_files_and_are_absent_without_a_wal(tmp_path, fence, db):
    run_app(db, grow(3))
    for which, path in (("db", db), ("wal", f"{db}-wal"), ("shm", f"{db}-shm")):
        fd = fence.raw_fd(which)
        assert fence.raw_fd(which) == fd
        assert os.pread(fd, 4096, 0) == file_bytes(path)[:4096]
    rollback = ReadFence(make_db(tmp_path / "rollback.db", wal=False))
    assert rollback.raw_fd("wal") == -1
    assert rollback.raw_fd("shm") == -1


def test_closing_one_fence_keeps_the_locks_of_another_on_the_same_file(fence, db):
    # POSIX locks are the process's: had the first fence closed its descriptors
    # of the database or -shm, the second fence's read mark would be gone.
    run_app(db, grow(20))
    fence.advance()
    other = open_fence(db)
    try:
        assert other.raw_fd("db") == fence.raw_fd("db")
        assert other.raw_fd("shm") == fence.raw_fd("shm")
        fence.close()
        run_app(db, grow(20))
        assert app_checkpoint(db, "TRUNCATE")[0] == 1
        assert os.fstat(other.raw_fd("shm")).st_size > 0
    finally:
        other.close()


# -- results -----------------------------------------------------------------------------


@given(
    busy=st.booleans(),
    frames=st.integers(min_value=-1, max_value=10_000),
    done=st.integers(min_value=-1, max_value=10_000),
)
def test_a_checkpoint_is_complete_when_not_busy_and_every_frame_is_in(busy, frames, done):
    result = CheckpointResult("PASSIVE", busy, frames, done, 0.0)
    assert result.complete == (not busy and frames == done)
