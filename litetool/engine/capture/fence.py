"""The read-lock fence that keeps SQLite from overwriting uncaptured frames.

SQLite overwrites WAL frames only when it *restarts* the WAL: a writer that
finds every frame checkpointed (backfilled) into the database and no reader
holding a WAL read mark (slots 1..N) starts again at frame 1 with new salts.
Two facts of SQLite's WAL locking make a zero-write fence possible:

- a reader holding a read mark on slot >= 1 blocks every restart, and limits
  checkpoints to the frames at or below its mark;
- a reader on slot 0 (it began when the WAL was fully backfilled) blocks every
  checkpoint from writing the database file, so at most one restart can happen
  while it is held, and only of a WAL whose frames were all backfilled.

The fence therefore always holds a read transaction on one of two read-only
connections and re-arms by beginning the other before ending the first
(``advance``), so there is never a moment without a reader. Everything below
the previous mark was captured before the fence advances (the engine's
contract), so no frame can be lost between captures.

Controlled checkpoints (``checkpoint``) take the write lock with
``BEGIN IMMEDIATE`` on a third connection, so no transaction can commit while
the last frames are captured and checkpointed; then the readers move to the
new position and the write lock is released. litetool never writes to the
user's database: nothing of it shows up in restored databases.

File descriptors: POSIX locks belong to the process and vanish when *any*
descriptor of the file is closed, so closing a descriptor of the database or
its ``-shm`` opened outside SQLite would silently drop SQLite's own locks (our
read marks included, and those of any other connection in this process).
Raw read descriptors of the database and ``-shm`` are therefore opened once
per file and process and never closed (``_PINNED_FDS``); SQLite holds no
locks on ``-wal``, whose descriptor the fence closes normally.

Closing: SQLite checkpoints and deletes the WAL when the last connection
closes. The read-write connections close first, while a read-only connection
still holds its shared lock (so they cannot be last), and a read-only
connection cannot checkpoint, so it never deletes the WAL either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from litetool.crashpoints import crash_point
from litetool.errors import DatabaseError
from litetool.wal.shm import CHECKPOINT_LOCK_BYTE

BUSY_TIMEOUT_MS = 5000
# How long a PASSIVE checkpoint waits for another checkpointer: without the
# write lock, and under it (writers are waiting then).
BACKFILL_RETRY_SECONDS = 1.0
LOCKED_RETRY_SECONDS = 0.02


# struct flock on Linux (x86_64, aarch64): l_type, l_whence, l_start, l_len, l_pid.
_FLOCK = struct.Struct("hh4xqqi4x")

# (device, inode, flags) -> descriptor, kept for the life of the process.
_PINNED_FDS: dict[tuple[int, int, int], int] = {}


def _pinned_fd(path: Path, flags: int = os.O_RDONLY) -> int:
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, flags)
    fd = _PINNED_FDS.get(key)
    if fd is None:
        fd = os.open(path, flags)
        _PINNED_FDS[key] = fd
    return fd


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """What ``PRAGMA wal_checkpoint`` reported."""

    mode: str
    busy: bool
    wal_frames: int
    checkpointed_frames: int
    seconds: float
    # How long the application's writers were held (the write lock), if at all.
    locked_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.busy and self.wal_frames == self.checkpointed_frames


class WriteLockBusy(DatabaseError):
    """SQLite's write lock was held by the application for the whole wait."""


class ReadFence:
    """Read transactions and controlled checkpoints on one live database."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._readers: list[sqlite3.Connection] = []
        self._active = 0
        self._writer: sqlite3.Connection | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self.switched_to_wal = False
        self._fds: dict[str, int] = {}
        # SQLite's checkpoint lock (``hold_checkpoints``): wished for, held, and
        # a mutex that orders taking it with litetool's own checkpoints.
        self._ckpt_mutex = threading.Lock()
        self._hold_wanted = False
        self._held = False

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> None:
        """Open the connections, switch to WAL mode if needed, hold a reader."""
        if not self.path.is_file():
            raise DatabaseError(f"database not found: {self.path}")
        try:
            self._writer = self._connect(read_only=False)
            mode = self._writer.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise DatabaseError(
                        f"{self.path}: cannot switch to WAL mode (journal_mode is {mode})",
                        hint="close other connections that use exclusive locking",
                    )
                self.switched_to_wal = True
            # Our own connections must never checkpoint on their own.
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._readers = [self._connect(read_only=True), self._connect(read_only=True)]
            self._begin_read(self._readers[0])
            self._active = 0
        except sqlite3.Error as exc:
            self.close()
            raise DatabaseError(f"{self.path}: cannot open: {exc}") from None

    def close(self) -> None:
        """Release everything; read-write connections first (see module doc)."""
        self.hold_checkpoints(False)
        if self._ckpt_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._ckpt_conn.close()
            self._ckpt_conn = None
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                self._writer.close()
            self._writer = None
        for reader in self._readers:
            with contextlib.suppress(sqlite3.Error):
                if reader.in_transaction:
                    reader.execute("COMMIT")
                reader.close()
        self._readers = []
        wal_fd = self._fds.pop("wal", None)
        if wal_fd is not None:
            os.close(wal_fd)
        self._fds = {}

    def raw_fd(self, which: str) -> int:
        """A read-only descriptor of ``db``, ``wal`` or ``shm`` (-1 if absent).

        Never close it: see the module docstring.
        """
        fd = self._fds.get(which)
        if fd is None:
            path = self.path if which == "db" else Path(f"{self.path}-{which}")
            try:
                fd = os.open(path, os.O_RDONLY) if which == "wal" else _pinned_fd(path)
            except FileNotFoundError:
                return -1
            self._fds[which] = fd
        return fd

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        if read_only:
            uri = f"file:{self.path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        return conn

    @staticmethod
    def _begin_read(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        # A read transaction starts at the first read; sqlite_master always exists.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    # -- the fence -----------------------------------------------------------

    def advance(self) -> None:
        """Move the held read mark to the current end of the WAL, gap-free.

        Call only after every frame up to the current end has been captured
        durably: the old mark stops protecting them.
        """
        nxt = 1 - self._active
        try:
            self._begin_read(self._readers[nxt])
            self._readers[self._active].execute("COMMIT")
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot hold read transaction: {exc}") from None
        self._active = nxt

    def new_reader(self) -> sqlite3.Connection:
        """A separate read-only connection with a read transaction begun now."""
        conn = self._connect(read_only=True)
        try:
            self._begin_read(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise DatabaseError(f"{self.path}: cannot begin a read transaction: {exc}") from None
        return conn

    def page_size(self) -> int:
        # The writer connection: the readers belong to a backfill in flight.
        assert self._writer is not None
        return int(self._writer.execute("PRAGMA page_size").fetchone()[0])

    def _take_write_lock(self, timeout: float) -> bool:
        """``BEGIN IMMEDIATE`` on the writer connection, polled without SQLite's
        busy handler: its sleeps grow to 100 ms, and an application committing
        back to back retakes the lock in the gaps, starving it for seconds.
        Polling every ~0.1 ms catches the gap between two of its transactions."""
        assert self._writer is not None
        deadline = time.monotonic() + timeout
        self._writer.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    self._writer.execute("BEGIN IMMEDIATE")
                    return True
                except sqlite3.OperationalError:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(0.0001)
        finally:
            self._writer.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    @contextlib.contextmanager
    def write_locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold SQLite's write lock (nothing can commit) without writing.

        Raises ``WriteLockBusy`` when the application holds it for ``timeout``."""
        if timeout is None:
            timeout = self._busy_timeout_ms / 1000
        if not self._take_write_lock(timeout):
            raise WriteLockBusy(
                f"{self.path}: cannot take the write lock: the application held it for {timeout:g}s"
            )
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("ROLLBACK")

    def backfill(self, *, retry_seconds: float = BACKFILL_RETRY_SECONDS) -> CheckpointResult:
        """A PASSIVE checkpoint up to the held mark; blocks no writer.

        While another connection checkpoints (the application's automatic
        checkpoint, typically doing this very backfill after the fence moved),
        it retries, then reports ``busy``.
        """
        return self._passive_retrying(time.perf_counter(), retry_seconds)

    def _passive_retrying(self, started: float, retry_seconds: float) -> CheckpointResult:
        deadline = time.monotonic() + retry_seconds
        while True:
            result = self._checkpoint_on(self._checkpointer(), "PASSIVE", started)
            lock_taken = result.busy and result.wal_frames < 0
            if not lock_taken or time.monotonic() >= deadline:
                return result
            time.sleep(0.0002)  # the checkpoint lock is taken: wait for it

    def checkpoint(
        self,
        capture: Callable[[], Callable[[], None] | None],
        *,
        truncate: bool,
        lock_timeout: float = 0.2,
    ) -> CheckpointResult:
        """Checkpoint every captured frame and let SQLite restart the WAL.

        ``capture`` is called under the write lock and must capture every
        committed frame up to the end of the WAL; it may return a ``settle``
        callable (making them durable) that runs while SQLite backfills and
        must return before the lock goes. Writers wait for that plus the
        backfill of frames not yet checkpointed, so callers first ``advance``
        and ``backfill`` without the lock.
        """
        assert self._writer is not None
        started = time.perf_counter()
        if not self._take_write_lock(lock_timeout):
            # The application held the write lock throughout (a long
            # transaction): not an error, the next checkpoint tries again.
            return CheckpointResult("PASSIVE", True, -1, -1, time.perf_counter() - started)
        locked = time.perf_counter()
        settle = None
        try:
            settle = capture()
            # The writer connection's read mark is at the end of the WAL now;
            # both readers can let go, then one re-arms after the checkpoint.
            for reader in self._readers:
                if reader.in_transaction:
                    reader.execute("COMMIT")
            # The application's automatic checkpoint may hold the checkpoint
            # lock for a moment after its last commit: wait briefly for it.
            result = self._passive_retrying(started, LOCKED_RETRY_SECONDS)
            crash_point("checkpoint-locked")
        finally:
            # Durable, and a reader again, before the write lock goes: never a
            # moment unfenced.
            try:
                if settle is not None:
                    settle()
            finally:
                try:
                    if not any(reader.in_transaction for reader in self._readers):
                        self._begin_read(self._readers[self._active])
                finally:
                    with contextlib.suppress(sqlite3.Error):
                        self._writer.execute("ROLLBACK")
        now = time.perf_counter()
        result = dataclasses.replace(result, seconds=now - started, locked_seconds=now - locked)
        if truncate and result.complete:
            # TRUNCATE also shrinks the file. It needs the write lock and fails
            # at once (busy_timeout 0) if the application wrote meanwhile: those
            # frames are not captured and our slot-0 reader blocks their backfill.
            conn = self._checkpointer()
            conn.execute("PRAGMA busy_timeout=0")
            try:
                truncated = self._checkpoint_on(conn, "TRUNCATE", started)
            finally:
                conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            result = dataclasses.replace(
                truncated,
                locked_seconds=result.locked_seconds + truncated.seconds - result.seconds,
            )
        return result

    def others_checkpoint(self) -> bool:
        """Whether another process holds SQLite's checkpoint lock now (Linux;
        elsewhere always False). An application's FULL, RESTART or TRUNCATE
        checkpoint holds it while it waits for readers, litetool's among them."""
        if not sys.platform.startswith("linux"):
            return False
        fd = self.raw_fd("shm")
        if fd < 0:
            return False
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, CHECKPOINT_LOCK_BYTE, 1, 0)
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        except OSError:
            return False
        return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK

    def hold_checkpoints(self, hold: bool) -> None:
        """Hold SQLite's checkpoint lock between litetool's own checkpoints.

        Between litetool's WAL restarts the WAL holds more than
        ``wal_autocheckpoint`` frames, so the application tries a checkpoint
        after each of its commits: it takes locks, sizes up the read marks,
        and backfills what it may, inside its commit. With this lock held each
        try returns at once (one failed ``fcntl``) and litetool's own steps do
        all the backfill. Held only while commits keep coming: an idle
        application never meets it (SQLite also needs it to recover the
        wal-index after a writer died mid-commit).

        Never waits: while litetool checkpoints, the checkpoint applies the
        wish when it ends.
        """
        self._hold_wanted = hold
        if self._ckpt_mutex.acquire(blocking=False):
            try:
                self._apply_hold()
            finally:
                self._ckpt_mutex.release()

    def _apply_hold(self) -> None:
        """Take or release the lock as wished (under ``_ckpt_mutex``)."""
        if self._hold_wanted == self._held:
            return
        fd = self._shm_rw_fd()
        if fd < 0:
            return
        try:
            if self._hold_wanted:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, CHECKPOINT_LOCK_BYTE)
                self._held = True
            else:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, CHECKPOINT_LOCK_BYTE)
                self._held = False
        except OSError:
            self._held = False  # the application is checkpointing: next time

    def _shm_rw_fd(self) -> int:
        fd = self._fds.get("shm-rw")
        if fd is None:
            try:
                fd = _pinned_fd(Path(f"{self.path}-shm"), os.O_RDWR)
            except OSError:
                fd = -1  # not writable by us: no hold, only a slower application
            self._fds["shm-rw"] = fd
        return fd

    def _checkpointer(self) -> sqlite3.Connection:
        # A separate read-write connection: the writer connection is inside its
        # transaction, and read-only connections cannot checkpoint.
        conn = self._ckpt_conn
        if conn is None:
            conn = self._connect(read_only=False)
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._ckpt_conn = conn
        return conn

    def _checkpoint_on(
        self, conn: sqlite3.Connection, mode: str, started: float
    ) -> CheckpointResult:
        with self._ckpt_mutex:
            try:
                busy, log, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.OperationalError:
                busy, log, done = 1, -1, -1
            except sqlite3.Error as exc:
                raise DatabaseError(f"checkpoint failed: {exc}") from None
            finally:
                # POSIX locks belong to the process: the checkpoint's unlock
                # released ours too.
                self._held = False
                self._apply_hold()
        return CheckpointResult(
            mode, bool(busy), int(log), int(done), time.perf_counter() - started
        )
