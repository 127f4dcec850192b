"""Serving the snapshots replica tasks ask for, from the capture thread.

A snapshot needs SQLite's write lock for a moment (see
``litetool.engine.capture.snapshot``), and only the capture thread captures: a
replica task's request (asyncio) goes into a queue, the capture thread opens
the snapshot when it comes round (``serve``), and the task's future gets it.
Once the capture thread has stopped (a final sync), requests are served in
the asking thread. Each snapshot taken pins its txid until it is published
or given up: the spool keeps the transactions after it (``pinned``), unless
the spool reaches its cap first (``unpin_all``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time

from litetool.engine.capture.capture import ContinuityLost
from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.capture.fence import WriteLockBusy
from litetool.engine.capture.snapshot import SnapshotSource
from litetool.errors import DatabaseError, LitetoolError

# A snapshot tries SQLite's write lock this long each time round the capture
# loop, warns after waiting SNAPSHOT_LOCK_WARN_SECONDS and gives up (the
# replica retries with backoff) after SNAPSHOT_LOCK_PATIENCE_SECONDS.
SNAPSHOT_LOCK_TRY_SECONDS = 0.05
SNAPSHOT_LOCK_WARN_SECONDS = 5.0
SNAPSHOT_LOCK_PATIENCE_SECONDS = 60.0


class SnapshotServing:
    """Snapshot requests of one database's replica tasks, and their pins."""

    def __init__(self, side: CaptureSide) -> None:
        self.side = side
        self._requests: queue.Queue[concurrent.futures.Future] = queue.Queue()
        # Requests waiting for SQLite's write lock: (future, since when).
        self._waiting: list[tuple[concurrent.futures.Future, float]] = []
        self._lock_warned = False
        # txids of snapshots taken and not yet published: the spool keeps what
        # follows each, so their replica can go on from there (while under the cap).
        self._pins: list[int] = []
        self._pins_lock = threading.Lock()  # also guards _capture_stopped
        self._capture_stopped = False

    @property
    def waiting(self) -> bool:
        """A request waits for SQLite's write lock (the capture loop looks again soon)."""
        return bool(self._waiting)

    async def take(self) -> SnapshotSource:
        """A snapshot at the current txid. The spool keeps the transactions after it
        until :meth:`release` (call it once the snapshot is published, or
        given up), unless the spool reaches its cap first."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._pins_lock:
            served_here = self._capture_stopped
            if not served_here:
                self._requests.put(future)
        if served_here:  # the capture thread is gone (a final sync): open it here
            return await asyncio.to_thread(self._open)
        if self.side.wakeup is not None:
            self.side.wakeup.interrupt()
        return await asyncio.wrap_future(future)

    def release(self, source: SnapshotSource) -> None:
        with self._pins_lock, contextlib.suppress(ValueError):
            self._pins.remove(source.txid)

    def pinned(self) -> list[int]:
        """The txids of the snapshots in flight."""
        with self._pins_lock:
            return list(self._pins)

    def unpin_all(self) -> list[int]:
        """The spool cap comes first: the snapshots in flight lose their place
        (their replicas start over from another one); returns their txids."""
        with self._pins_lock:
            pins = list(self._pins)
            self._pins.clear()
        return pins

    def serve(self, *, last: bool = False) -> None:
        """Open the snapshots replicas asked for (in the capture thread).

        SQLite's write lock is tried for SNAPSHOT_LOCK_TRY_SECONDS each time
        round, so capture goes on while the application holds it (an
        application checkpoint waiting for litetool's reader holds it: the
        loop makes way for it meanwhile). A request that cannot have the lock
        for SNAPSHOT_LOCK_PATIENCE_SECONDS fails; its replica reports that and
        asks again after a backoff. ``last``: the capture thread is leaving,
        every request is answered now.
        """
        if self._requests.empty() and not self._waiting:
            return  # the common case, without raising queue.Empty
        while True:
            try:
                future = self._requests.get_nowait()
            except queue.Empty:
                break
            self._waiting.append((future, time.monotonic()))
        waiting, self._waiting = self._waiting, []
        for index, (future, since) in enumerate(waiting):
            try:
                source = self._open(lock_timeout=None if last else SNAPSHOT_LOCK_TRY_SECONDS)
            except WriteLockBusy as exc:
                waited = time.monotonic() - since
                if last or waited >= SNAPSHOT_LOCK_PATIENCE_SECONDS:
                    future.set_exception(
                        WriteLockBusy(f"{exc.message} (a snapshot waited {waited:.0f}s)")
                    )
                    continue
                if not self._lock_warned and waited >= SNAPSHOT_LOCK_WARN_SECONDS:
                    self._lock_warned = True
                    self.side.log(
                        "warning",
                        "snapshot waits for the write lock",
                        seconds=round(waited, 1),
                        hint="the application holds SQLite's write lock",
                    )
                self._waiting = waiting[index:]  # in order: try again next time
                return
            except LitetoolError as exc:
                future.set_exception(exc)
            else:
                self._lock_warned = False
                future.set_result(source)
                self.side.notify_replicas()

    def leave(self) -> None:
        """The capture thread ends: later snapshot requests open their own."""
        with self._pins_lock:
            self._capture_stopped = True
        self.serve(last=True)

    def _open(self, *, lock_timeout: float | None = None) -> SnapshotSource:
        """Open a snapshot and pin its txid in the spool (in the capture thread, or
        in any thread once it has stopped: before any later trim can run)."""
        try:
            source = self.side.capture.open_snapshot(lock_timeout=lock_timeout)
        except (OSError, ContinuityLost) as exc:
            raise DatabaseError(str(exc)) from exc
        with self._pins_lock:
            self._pins.append(source.txid)
        return source
