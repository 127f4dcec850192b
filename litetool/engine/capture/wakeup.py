"""Waking the capture loop when the WAL changes: inotify, or a short poll.

inotify (Linux) is used through ctypes on the database's directory, so the
loop sleeps at zero cost while the database is idle and wakes within a
millisecond of a write. Elsewhere, or if inotify is unavailable, it polls the
WAL's size and mtime. Either way a wait also ends after ``timeout`` seconds,
so periodic work (checkpoint interval, shutdown) runs on time.

While commits keep coming the loop polls instead of waiting
(``writer_active`` says when they may still come).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import threading
import time
from pathlib import Path

from litetool.engine.spool.spool_codec import WalPosition
from litetool.wal.header import FRAME_SALTS_OFFSET, raw_salts

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
# A frame of the current WAL after the captured position, in a file written
# this recently, is a transaction in flight (older: one a writer abandoned).
IN_FLIGHT_NS = 100_000_000


class WalWakeup:
    """Blocks until the WAL (or anything in its directory) may have changed."""

    def __init__(self, wal_path: Path, *, poll_seconds: float = 0.005) -> None:
        self.wal_path = wal_path
        self._poll_seconds = poll_seconds
        self._fd = -1
        self._wd = -1
        self._libc: ctypes.CDLL | None = None
        self._stop_r, self._stop_w = os.pipe()
        os.set_blocking(self._stop_w, False)
        self._last_stat: tuple[int, int] | None = None
        # The WAL file's (size, mtime) at the last capture: a change means a
        # writer is at work (a transaction may be in flight).
        self._wal_stat: tuple[int, int] = (-1, -1)
        self._lock = threading.Lock()
        self.using_inotify = self._open_inotify()

    def _open_inotify(self) -> bool:
        name = ctypes.util.find_library("c")
        if not name or not hasattr(select, "poll"):
            return False
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                return False
            self._wd = libc.inotify_add_watch(fd, self._directory, _MASK)
            if self._wd < 0:
                os.close(fd)
                return False
        except (OSError, AttributeError):
            return False
        self._fd = fd
        self._libc = libc
        return True

    @property
    def _directory(self) -> bytes:
        return str(self.wal_path.parent).encode()

    @property
    def watching(self) -> bool:
        return self._wd >= 0

    def pause(self) -> None:
        """Stop watching while the caller polls on its own (a busy database).

        Every write into a watched directory costs the *writer* an inotify
        event (several percent of a write-heavy application's time), so the
        capture loop drops the watch while each capture finds new commits.
        """
        if self._libc is not None and self._wd >= 0:
            self._libc.inotify_rm_watch(self._fd, self._wd)
            self._wd = -1
            self._drain()

    def resume(self) -> None:
        """Watch again; the caller then checks once more before it waits."""
        if self._libc is not None and self._wd < 0:
            self._wd = self._libc.inotify_add_watch(self._fd, self._directory, _MASK)
            if self._wd < 0:  # cannot watch again: fall back to polling
                os.close(self._fd)
                self._fd = -1
                self._libc = None
                self.using_inotify = False

    def wait(self, timeout: float) -> bool:
        """Wait for a change; True if something changed, False on timeout/stop."""
        if self._fd >= 0:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._stop_r, select.POLLIN)
            events = poller.poll(max(0, int(timeout * 1000)))
            if not events:
                return False
            self._drain()
            return any(fd == self._fd for fd, _ in events)
        return self._poll(timeout)

    def _drain(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass

    def _poll(self, timeout: float) -> bool:
        waited = 0.0
        while waited < timeout:
            try:
                st = os.stat(self.wal_path)
                current = (st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                current = (-1, 0)
            if current != self._last_stat:
                self._last_stat = current
                return True
            readable, _, _ = select.select([self._stop_r], [], [], self._poll_seconds)
            if readable:
                return False
            waited += self._poll_seconds
        return False

    def interrupt(self) -> None:
        """Wake a waiting thread at once (used for shutdown and forced syncs).

        Never blocks: a full pipe already holds a pending wake-up.
        """
        with contextlib.suppress(BlockingIOError):
            os.write(self._stop_w, b"x")

    def clear_interrupt(self) -> None:
        try:
            os.set_blocking(self._stop_r, False)
            while os.read(self._stop_r, 1024):
                pass
        except BlockingIOError:
            pass

    def writer_active(self, fd: int, position: WalPosition | None) -> bool:
        """Whether a writer may be at work on the WAL (open as ``fd``, captured up
        to ``position``): the file changed since the last call, or it changed
        lately and the frame after the captured position belongs to this WAL
        (a transaction being written; after a restart the WAL is overwritten
        in place, which the file's size does not show and its coarse mtime may
        not either)."""
        if fd < 0:
            return False
        st = os.fstat(fd)
        stat = (st.st_size, st.st_mtime_ns)
        moved, self._wal_stat = stat != self._wal_stat, stat
        if moved:
            return True
        if position is None or time.time_ns() - st.st_mtime_ns > IN_FLIGHT_NS:
            return False
        salts = os.pread(fd, 8, position.offset + FRAME_SALTS_OFFSET)
        return salts == raw_salts(position.header)

    def close(self) -> None:
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._stop_r = self._stop_w = -1
