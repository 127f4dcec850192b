"""Waking on WAL changes of a real database: inotify on its directory, or a
poll of the WAL's size when inotify cannot be had; and telling whether a
writer is at work on the WAL."""

from __future__ import annotations

import ctypes.util
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fence_builders import grow, make_db, wal_header

from litetool.engine.capture.wakeup import IN_FLIGHT_NS, WalWakeup
from litetool.engine.spool.spool_codec import WalPosition
from litetool.wal.header import WAL_HEADER_SIZE, frame_size, parse_wal_header

IDLE = 0.05  # how long an idle database is watched for a change that must not come


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path / "app.db", rows=1)


@pytest.fixture
def app(db):
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("SELECT count(*) FROM t").fetchone()  # the WAL and -shm exist now
    yield conn
    conn.close()


@pytest.fixture
def wakeup(db, app):
    wakeup = WalWakeup(Path(f"{db}-wal"))
    yield wakeup
    wakeup.close()


def commit(app: sqlite3.Connection) -> None:
    app.execute(grow(1))


class Waiter:
    """``wakeup.wait`` on another thread, as the capture loop waits."""

    def __init__(self, wakeup: WalWakeup, timeout: float = 60) -> None:
        self.result: bool | None = None
        self._thread = threading.Thread(target=self._wait, args=(wakeup, timeout))
        self._thread.start()

    def _wait(self, wakeup: WalWakeup, timeout: float) -> None:
        self.result = wakeup.wait(timeout)

    def still_waiting(self) -> bool:
        self._thread.join(IDLE)
        return self._thread.is_alive()

    def woken(self) -> bool | None:
        self._thread.join(10)
        assert not self._thread.is_alive()
        return self.result


def test_a_commit_wakes_the_loop_and_an_idle_database_does_not(wakeup, app):
    assert wakeup.using_inotify and wakeup.watching
    assert not wakeup.wait(IDLE)
    commit(app)
    assert wakeup.wait(5)
    assert not wakeup.wait(IDLE)  # one change, reported once


def test_a_commit_wakes_a_waiting_thread(wakeup, app):
    waiter = Waiter(wakeup)
    assert waiter.still_waiting()
    commit(app)
    assert waiter.woken() is True


def test_interrupt_wakes_a_waiting_thread_without_a_change(wakeup):
    waiter = Waiter(wakeup)
    assert waiter.still_waiting()
    wakeup.interrupt()
    assert waiter.woken() is False


def test_interrupts_never_block_and_clear_interrupt_forgets_them(wakeup, app):
    for _ in range(100_000):  # more than a pipe holds
        wakeup.interrupt()
    wakeup.clear_interrupt()
    waiter = Waiter(wakeup)
    assert waiter.still_waiting()
    commit(app)
    assert waiter.woken() is True


def test_a_paused_wakeup_watches_nothing_until_resumed(wakeup, app):
    commit(app)
    wakeup.pause()
    assert not wakeup.watching
    commit(app)  # no event reaches the paused watch, nor did the one before
    assert not wakeup.wait(IDLE)
    wakeup.resume()
    assert wakeup.watching
    commit(app)
    assert wakeup.wait(5)


def test_without_inotify_it_polls_the_wal(monkeypatch, db, app):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    wakeup = WalWakeup(Path(f"{db}-wal"), poll_seconds=0.001)
    try:
        assert not wakeup.using_inotify and not wakeup.watching
        wakeup.wait(IDLE)  # the first look takes the WAL's size and time
        assert not wakeup.wait(IDLE)
        commit(app)
        assert wakeup.wait(5)
        assert not wakeup.wait(IDLE)
        waiter = Waiter(wakeup)
        assert waiter.still_waiting()
        wakeup.interrupt()
        assert waiter.woken() is False
    finally:
        wakeup.close()


# -- writer_active -----------------------------------------------------------------------


@pytest.fixture
def wal_fd(db, app):
    fd = os.open(f"{db}-wal", os.O_RDONLY)  # SQLite holds no locks on the WAL
    yield fd
    os.close(fd)


def position_after(db: Path, frames: int) -> WalPosition:
    """The position after the first *frames* frames of the live WAL."""
    raw = wal_header(db)
    header = parse_wal_header(raw)
    offset = WAL_HEADER_SIZE + frames * frame_size(header.page_size)
    return WalPosition(raw, offset, header.checksum)


def frames_now(db: Path) -> int:
    raw = wal_header(db)
    size = os.path.getsize(f"{db}-wal") - WAL_HEADER_SIZE
    return size // frame_size(parse_wal_header(raw).page_size)


def touch(db: Path, *, ago_ns: int) -> None:
    """Set the WAL's modification time to *ago_ns* before now."""
    when = time.time_ns() - ago_ns
    os.utime(f"{db}-wal", ns=(when, when))


def test_a_wal_that_changed_since_the_last_look_has_a_writer(wakeup, db, app, wal_fd):
    assert not wakeup.writer_active(-1, None)
    commit(app)
    assert wakeup.writer_active(wal_fd, None)
    assert not wakeup.writer_active(wal_fd, None)
    commit(app)
    assert wakeup.writer_active(wal_fd, None)
    assert not wakeup.writer_active(wal_fd, None)


def test_frames_past_the_captured_position_in_a_fresh_wal_are_a_writer_at_work(
    wakeup, db, app, wal_fd
):
    commit(app)
    captured = frames_now(db)
    commit(app)  # the next transaction: past the captured position
    behind = position_after(db, captured)
    at_end = position_after(db, frames_now(db))
    touch(db, ago_ns=-10 * IN_FLIGHT_NS)  # written just now (the clock's grain aside)
    assert wakeup.writer_active(wal_fd, behind)  # the file changed
    assert wakeup.writer_active(wal_fd, behind)  # unchanged since, but frames follow
    assert not wakeup.writer_active(wal_fd, at_end)  # nothing follows the position
    touch(db, ago_ns=10 * IN_FLIGHT_NS)
    assert wakeup.writer_active(wal_fd, behind)
    assert not wakeup.writer_active(wal_fd, behind)  # written long ago: abandoned


def test_frames_of_a_restarted_wal_are_not_past_a_position_in_the_old_one(wakeup, db, app, wal_fd):
    commit(app)
    old = position_after(db, 0)
    assert app.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    commit(app)  # a new WAL, new salts, written from its first frame
    new = position_after(db, 0)
    assert new.header != old.header
    touch(db, ago_ns=-10 * IN_FLIGHT_NS)
    assert wakeup.writer_active(wal_fd, old)
    assert not wakeup.writer_active(wal_fd, old)
    assert wakeup.writer_active(wal_fd, new)
