"""The capture thread of one database: the loop that drives the capture side.

Each time round: follow a replaced database file, serve snapshot requests,
watch commits become visible (busy mode), capture, keep the backfill going,
apply the checkpoint policy, keep the page digests, brake when asked, and
announce what was captured (status, events, the replica tasks' wake-up, the
spool cap), at most every STATUS_INTERVAL_SECONDS while commits stream in.
Then wait for the WAL to change (see "Engine, one database" in
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import threading
import time

from litetool.engine.capture.capture import CaptureBatch, ContinuityLost
from litetool.engine.capture.capture_side import IDENTITY_CHECK_SECONDS, CaptureSide
from litetool.engine.capture.checkpoint import CheckpointPolicy
from litetool.engine.runtime.status import DatabaseState, EventKind, publish_and_log
from litetool.engine.runtime.supervisor import report_failure
from litetool.engine.snapshot_serving import SnapshotServing
from litetool.engine.spool_cap import SpoolCap
from litetool.errors import DatabaseError, LitetoolError

# The capture loop also wakes this often without a WAL change, for the
# checkpoint interval, snapshot requests and shutdown.
IDLE_WAKE_SECONDS = 0.5
# At most one capture per this interval while commits keep coming: they are
# taken in one batch. A capture costs about 0.4 ms of CPU whatever it finds,
# so at 200 tx/s this halves litetool's CPU against one capture per commit.
CAPTURE_SPACING_SECONDS = 0.010
# Between captures the wal-index is watched this often: each transaction is
# stamped with the time its commit was first seen (``CommitClock``), so its
# time is late by about this much, not by the capture spacing. A look is one
# pread of 96 bytes.
COMMIT_OBSERVE_SECONDS = 0.001
# While the application checkpoints (or a snapshot waits for the write lock),
# the capture loop looks again this often instead of sleeping IDLE_WAKE_SECONDS.
MAKE_WAY_SECONDS = 0.02
# The status board, events and spool cap are refreshed at most this often.
STATUS_INTERVAL_SECONDS = 0.25


class CaptureThread:
    """The capture loop of one database (``run``, in a thread of its own)."""

    def __init__(
        self,
        side: CaptureSide,
        snapshots: SnapshotServing,
        spool_cap: SpoolCap,
        checkpoints: CheckpointPolicy,
    ) -> None:
        self.side = side
        self.snapshots = snapshots
        self.spool_cap = spool_cap
        self.checkpoints = checkpoints
        self._stop = threading.Event()
        self._next_make_way = 0.0
        self._made_way = 0
        self._last_trim = 0.0
        # Captured txids not yet announced on the board: (first, last, time).
        self._unannounced: tuple[int, int, int] | None = None
        # The last txid announced (or known at open): captures made outside
        # ``capture_once`` (under a snapshot's or a checkpoint's lock) are
        # announced from it by ``_refresh_status``.
        self._announced_txid = 0
        self._last_status = 0.0

    def stop(self) -> None:
        """Ask the loop for its final capture and seal, and to leave."""
        self._stop.set()
        if self.side.wakeup is not None:
            self.side.wakeup.interrupt()

    def run(self) -> None:
        """Capture on every WAL change; while commits keep coming, poll instead.

        Idle, the loop sleeps on inotify. Once a capture finds commits, the
        watch is dropped (it costs the application an event per write) and the
        loop polls every CAPTURE_SPACING_SECONDS until a capture finds
        nothing; then it watches again, captures once more (a commit may have
        landed in between) and only then sleeps.
        """
        side = self.side
        self._announced_txid = side.capture.txid
        last_capture = 0.0
        busy = False
        while True:
            wakeup = side.wakeup  # a new one after the database file was replaced
            assert wakeup is not None
            stopping = self._stop.is_set()
            batch = None
            app_checkpoint = False
            try:
                if side.reopen_pending or side.file_replaced():
                    busy = False
                    generation = side.generation
                    side.reopen()
                    if side.generation != generation:
                        self._forget_announcements()
                    if not side.reopen_pending:
                        continue
                    if stopping:  # no file to capture from, nothing to seal
                        self.snapshots.leave()
                        return
                    # The new file cannot be opened yet: nothing to capture.
                    self._stop.wait(IDENTITY_CHECK_SECONDS)
                    continue
                self.snapshots.serve()
                if busy and not stopping:
                    self._watch_commits(last_capture + CAPTURE_SPACING_SECONDS)
                last_capture = time.monotonic()
                batch = side.capture.capture_once()
                if batch is not None:
                    self._captured(batch)
                side.checkpointer.backfill_step(on_backfilled=wakeup.interrupt)
                if (
                    self.checkpoints.step(
                        side.checkpointer,
                        on_backfilled=wakeup.interrupt,
                        braked_seconds=side.brake.braked_seconds,
                    )
                    is not None
                ):
                    side.notify_replicas()
                side.keeper.maintain(side.capture, side.generation, side.notify_replicas)
                if side.brake.due(checkpoint_behind=side.checkpointer.braking):
                    side.brake.pulse()
                self._refresh_status(force=batch is None or stopping)
                app_checkpoint = batch is None and self._make_way_for_application()
            except ContinuityLost as exc:
                side.new_generation(exc.reason)
                self._forget_announcements()
            except (LitetoolError, OSError) as exc:
                self._capture_failed(exc)
                if self._stop.wait(1.0):
                    stopping = True
            except Exception as exc:  # never let the capture thread die silently
                report_failure(side.board, side.log, str(side.db_path), "capture", exc)
                self._capture_failed(DatabaseError(f"unexpected {type(exc).__name__}: {exc}"))
                if self._stop.wait(1.0):
                    stopping = True
            if stopping:
                side.keeper.seal_at_stop(side.capture, side.generation)
                self.snapshots.leave()
                return
            # A transaction may be in flight.
            moving = wakeup.writer_active(side.fence.raw_fd("wal"), side.capture.position)
            if batch is not None or moving or side.checkpointer.checkpoint_in_progress:
                if not busy:
                    wakeup.pause()
                    busy = True
                # While commits keep coming, the application's own checkpoint
                # attempts are turned away (each would cost it a commit's time;
                # see ``ReadFence.hold_checkpoints``). Asked each time: a wish
                # made during one of litetool's checkpoints may not take.
                side.fence.hold_checkpoints(True)
                continue  # poll: the next capture comes after the spacing
            side.fence.hold_checkpoints(False)
            if busy:
                wakeup.resume()
                busy = False
                continue  # one more capture now that the watch is back
            wakeup.wait(
                MAKE_WAY_SECONDS if app_checkpoint or self.snapshots.waiting else IDLE_WAKE_SECONDS
            )
            wakeup.clear_interrupt()

    def _make_way_for_application(self) -> bool:
        """If the application checkpoints (and may wait for litetool's reader),
        move the fence out of its way (``Checkpointer.make_way``); True while it does."""
        side = self.side
        if not side.fence.others_checkpoint():
            return False
        now = time.monotonic()
        if now >= self._next_make_way and side.checkpointer.make_way():
            self._next_make_way = now + MAKE_WAY_SECONDS
            self._made_way += 1
            side.log("debug", "made way for a checkpoint of the application", times=self._made_way)
        return True

    def _watch_commits(self, until: float) -> None:
        """Until ``until`` (monotonic), note when each commit becomes visible,
        every COMMIT_OBSERVE_SECONDS (``Capture.observe_commits``): the next
        capture stamps transactions with those times."""
        capture = self.side.capture
        while True:
            capture.observe_commits()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(COMMIT_OBSERVE_SECONDS, left))

    # -- announcing captures ---------------------------------------------------------------

    def _forget_announcements(self) -> None:
        """A new generation counts from its base: nothing of the old one is announced."""
        self._unannounced = None
        self._announced_txid = self.side.capture.txid

    def _captured(self, batch: CaptureBatch) -> None:
        pending = self._unannounced
        first = pending[0] if pending else batch.first_txid
        self._unannounced = (first, batch.last_txid, batch.time_us)
        self.spool_cap.check_if_near()
        self.side.notify_replicas()

    def _announce_side_captures(self) -> None:
        """Transactions captured while a snapshot or a checkpoint held the write
        lock (``Capture.capture_tail``) come to no ``_captured``: without this,
        status showed the txid before them (below what a replica published from
        the snapshot) until the next commit, and no replica was woken for them."""
        capture = self.side.capture
        txid = capture.txid
        known = self._unannounced[1] if self._unannounced else self._announced_txid
        if txid > known:
            first = self._unannounced[0] if self._unannounced else known + 1
            self._unannounced = (first, txid, capture.last_time_us)
            self.side.notify_replicas()
        elif txid < known:  # a new generation counts from its base again
            self._unannounced = None
            self._announced_txid = txid

    def _refresh_status(self, *, force: bool) -> None:
        """Announce captures, check the spool cap and update the board, at most
        every STATUS_INTERVAL_SECONDS while commits stream in (at once when idle)."""
        now = time.monotonic()
        self._announce_side_captures()
        if self._unannounced is None:
            if force and now - self._last_trim >= STATUS_INTERVAL_SECONDS:
                # Idle: what the replicas published meanwhile leaves the spool.
                self._last_trim = now
                self.spool_cap.check()
            return
        if not force and now - self._last_status < STATUS_INTERVAL_SECONDS:
            return
        first, last, time_us = self._unannounced
        self._unannounced = None
        self._announced_txid = last
        self._last_status = now
        self.side.board.publish(
            EventKind.CAPTURED,
            str(self.side.db_path),
            f"txids {first}..{last}",
            first_txid=first,
            last_txid=last,
            time_us=time_us,
        )
        self.spool_cap.check()
        self.side.publish_status()

    def _capture_failed(self, exc: Exception) -> None:
        side, db = self.side, str(self.side.db_path)
        message = exc.render() if isinstance(exc, LitetoolError) else f"{exc}"
        side.board.update_database(
            db, last_error=message, state=DatabaseState.ERROR, add={"capture_errors": 1}
        )
        publish_and_log(side.board, side.log, "error", "capture failed", db, message, error=message)
