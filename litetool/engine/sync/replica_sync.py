"""One replica's sync loop: spool -> segment + index record.

Each replica of a database runs one ``ReplicaSync.run`` task. A sync uploads
every spooled transaction after the replica's published txid as one segment
(several when the backlog exceeds ``SEGMENT_TARGET_BYTES``), then publishes the
index record that names it: the commit point. A busy database therefore costs
about one segment PUT and one record PUT per sync interval, and an idle one
costs nothing: the loop sleeps until the capture side signals new
transactions.

The parts: where the replica stands (``generation_start``), segments from the
spool (``segment_build``), snapshots (``snapshot_publish``), snapshot
schedule, compaction and GC (``upkeep``), failures and status
(``replica_health``); every record goes out through the replica's
``GenerationWriter``.

Threads: the loop owns everything here but ``progress``, a frozen
``ReplicaProgress`` that any thread may read; the loop replaces it whenever
its position, health or detaching changes, and the capture thread's one
write, ``detach`` at the spool cap, replaces it under the same lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from litetool.engine.runtime.status import EventKind, ReplicaState, StatusBoard, publish_and_log
from litetool.engine.runtime.supervisor import report_failure
from litetool.engine.sync.generation_start import (
    EngineView,
    ReplicaPosition,
    open_generation,
    reload_tip,
)
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.engine.sync.replica_progress import ReplicaProgress
from litetool.engine.sync.segment_build import SpoolGap, TransactionTooLarge
from litetool.engine.sync.segment_publish import SegmentPublisher
from litetool.engine.sync.snapshot_publish import SnapshotPublisher
from litetool.engine.sync.upkeep import Upkeep
from litetool.errors import (
    LitetoolError,
    OwnRecordExists,
    ReplicaConflict,
)
from litetool.storage import Replica
from litetool.storage.generation_writer import GenerationWriter

# While a replica waits out an outage (the store unreachable, not answering in
# time, failing with 5xx), it asks the store this often whether it answers again
# (``Replica.probe``, a HEAD) and goes on at once when it does: otherwise the
# catch-up after an outage waits for a backoff grown to up to a minute. Not for
# throttling (the store asked for fewer requests) nor for errors no retry heals.
PROBE_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 2.0
# Two syncs start at least this far apart, even at a sync interval of 0s: the
# commits that arrive meanwhile share one segment and one record instead of
# costing two PUTs each (at 200 tx/s, about one sync per 4 commits instead of
# one per commit), for at most this much more lag.
MIN_SYNC_SPACING_SECONDS = 0.02
# While the sync interval runs, the spool is checked this often for a full
# segment to upload ahead of the sync (``_stage_full_segment``).
STAGE_POLL_SECONDS = 0.1


class ReplicaSync:
    """The sync loop of one replica of one database."""

    def __init__(
        self,
        *,
        name: str,
        replica: Replica,
        engine: EngineView,
        board: StatusBoard,
        db_path: str,
        sync_interval: float,
        snapshot_interval: float,
        retention: float,
        gc_grace: float,
        log: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.replica = replica
        self.engine = engine
        self.board = board
        self.db_path = db_path
        self.sync_interval = sync_interval
        self.log = log
        self.clock = clock
        # Replaced whole (see the module's docstring); under the lock, so that
        # the capture thread's ``detach`` and the loop's updates never undo
        # each other.
        self._progress_lock = threading.Lock()
        self.progress = ReplicaProgress(active_at=time.monotonic())
        self.health = ReplicaHealth(
            name=name,
            replica=replica,
            board=board,
            db_path=db_path,
            log=log,
            on_change=self._publish_progress,
        )
        self.writer = GenerationWriter(
            replica, engine.writer_id, now_us=lambda: int(self.clock() * 1e6)
        )
        self.segments = SegmentPublisher(
            engine=engine, writer=self.writer, health=self.health, clock=clock
        )
        self.snapshots = SnapshotPublisher(engine=engine, health=self.health, clock=clock)
        self.upkeep = Upkeep(
            engine=engine,
            health=self.health,
            snapshot_interval=snapshot_interval,
            retention=retention,
            gc_grace=gc_grace,
            clock=clock,
        )
        self.position: ReplicaPosition | None = None
        self.wake = asyncio.Event()
        # Set by ``notify`` (any thread) until the loop has seen the wake-up:
        # a burst of captures costs one cross-thread call, not one each.
        self._wake_requested = False
        self._last_sync = 0.0
        self._last_sync_started = 0.0
        self._detach_reason = ""  # why the next new generation starts, when detached
        # A record we meant to publish was already stored by an earlier attempt of
        # ours (its answer lost): our position is behind the replica's tip.
        self._tip_stale = False

    # -- progress ----------------------------------------------------------------------

    def _publish_progress(self, *, detached: bool | None = None) -> None:
        """Replace ``progress`` with what the loop's state shows now (the loop
        thread only); *detached*, when given, changes whether it is detached."""
        position, health = self.position, self.health
        with self._progress_lock:
            self.progress = ReplicaProgress(
                generation=position.generation if position is not None else None,
                engine_generation=position.engine_generation if position is not None else None,
                txid=position.txid if position is not None else -1,
                detached=self.progress.detached if detached is None else detached,
                failing=health.failures > 0,
                active_at=health.last_progress,
                unusable_error=health.unusable_error,
            )

    def detach(self) -> None:
        """Give up on the spooled history for this replica (spool cap reached).

        Thread-safe (the capture thread calls it): only ``progress`` changes
        here, at once, so the spool cap no longer counts this replica; the
        loop starts a new generation when it next looks.
        """
        with self._progress_lock:
            self.progress = replace(self.progress, detached=True)
        self.board.update_replica(self.db_path, self.name, state=ReplicaState.DETACHED)

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until ``stop`` is set, then make one final sync."""
        self.health.status(state=ReplicaState.STARTING, url=self.replica.display_url)
        while not stop.is_set():
            try:
                if self.position is None or self._needs_new_generation():
                    await self._start()
                elif self._tip_stale:
                    await self._reload_tip()
                elif self.progress.needs_snapshot:
                    await self._publish_snapshot()
                await self.sync_once()
                self.health.succeeded()
            except SpoolGap as exc:
                self._lost_place(exc)
                continue
            except OwnRecordExists as exc:
                # Not a conflict: continue from the replica's tip, at once.
                self._tip_stale = True
                self.log("warning", "record already stored", replica=self.name, error=str(exc))
                continue
            except ReplicaConflict as exc:
                # Another litetool owns this replica (its lease, or a record it
                # published first): never write beside it. The engine stops
                # and the process exits non-zero, saying so.
                self.health.failed(exc, state=ReplicaState.CONFLICT)
                self.engine.fenced(self.name, exc)
                return
            except (LitetoolError, OSError) as exc:
                state = "backoff"
                if self.health.never_worked_and_cannot(exc):
                    # The replica never worked and its answer says it cannot
                    # (credentials, permissions, no bucket, configuration). With
                    # no other replica that works, the process stops with this
                    # one error instead of retrying forever.
                    self.health.unusable(exc)
                    if self.engine.unusable(self.name, exc):
                        await self._give_up(exc)
                        return
                    state = "error"
                # Storage errors, and the engine's (a snapshot that could not be
                # opened, a damaged spool file): retried with backoff. So is a
                # misconfigured replica next to one that works, or one that
                # worked before (keys rotated, a bucket policy): it recovers
                # once fixed, its error logged once.
                self.health.failed(exc, state=state)
            except Exception as exc:  # a bug: loudly, with its traceback, then retried
                report_failure(
                    self.board, self.log, self.db_path, "replica sync", exc, replica=self.name
                )
                self.health.failed(exc, state=ReplicaState.BACKOFF)
            if self.health.failures:
                await self._back_off(stop, self.health.backoff_seconds())
                continue
            await self._wait_for_work(stop)
        await self._final_sync()

    async def _give_up(self, exc: LitetoolError) -> None:
        """Stop this replica: the engine stops replication with *exc* (see ``run``)."""
        self.health.status(state=ReplicaState.ERROR, last_error=exc.render())
        self.board.publish(EventKind.ERROR, self.db_path, exc.render(), replica=self.name)
        with contextlib.suppress(LitetoolError, OSError):
            await self.writer.release_lease()

    async def _back_off(self, stop: asyncio.Event, delay: float) -> None:
        """Wait *delay* before the next attempt; after an outage, only until the store
        answers a probe (every ``PROBE_SECONDS``)."""
        deadline = time.monotonic() + delay
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            outage = self.health.outage
            await _wait_any(stop, None, min(left, PROBE_SECONDS) if outage else left)
            if outage and not stop.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(self.replica.probe(), PROBE_TIMEOUT_SECONDS):
                        return

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        # Sleep until there are new transactions (or periodic upkeep is due);
        # then keep at least sync_interval between two syncs. A sync that left
        # a backlog (a record's worth of segments and more waiting) goes on at
        # once: no capture may come to wake it, and the interval is for batching.
        if self.segments.backlog:
            return
        assert self.position is not None
        upkeep = self.upkeep.seconds_to_next(self.position)
        summary_in = self.segments.summary.seconds_left(time.monotonic())
        await _wait_any(stop, self.wake, min(upkeep, summary_in))
        if self.segments.summary.due(time.monotonic()):
            self.segments.log_summary()  # a burst ended: its line comes on time
        self.wake.clear()
        self._wake_requested = False
        if stop.is_set():
            return
        resume = max(
            self._last_sync + self.sync_interval,
            self._last_sync_started + MIN_SYNC_SPACING_SECONDS,
        )
        staging = True
        while not stop.is_set():
            remaining = resume - self.clock()
            if remaining <= 0 or self.segments.record_full:
                return  # a record's worth is staged: publish it now
            if staging:
                staged = await self._stage_full_segment()
                if staged:
                    continue
                staging = staged is not None  # after a failure, the sync retries
            await _wait_any(stop, None, min(remaining, STAGE_POLL_SECONDS))

    async def _stage_full_segment(self) -> bool | None:
        """While the sync interval runs, upload the next *full* segment, if the
        spool holds one (``SegmentPublisher.stage``)."""
        position = self.position
        if position is None or self.progress.needs_snapshot or self._needs_new_generation():
            return False
        return await self.segments.stage(position)

    async def _final_sync(self) -> None:
        await self.upkeep.stop()
        try:
            if self.position is not None:
                try:
                    if self._tip_stale and not self._needs_new_generation():
                        await self._reload_tip()
                    if not self._needs_new_generation() and not self.progress.needs_snapshot:
                        while await self.sync_once(upkeep=False):
                            pass
                except SpoolGap as exc:
                    self._lost_place(exc)
                if self._needs_new_generation() or self.progress.needs_snapshot:
                    # What the spool lost is in the database: a last snapshot (only
                    # its changed chunks are uploaded) so the replica ends current.
                    if self._needs_new_generation():
                        await self._start()
                    else:
                        await self._publish_snapshot()
                    while await self.sync_once(upkeep=False):
                        pass
            self.segments.log_summary()
            await self.writer.release_lease()
            self.health.status(state=ReplicaState.STOPPED)
        except (LitetoolError, OSError) as exc:
            self.log("error", "final sync failed", replica=self.name, error=str(exc))
            self.health.status(state=ReplicaState.STOPPED, last_error=str(exc))

    def notify(self, loop: asyncio.AbstractEventLoop) -> None:
        """New transactions were captured (called from the capture thread)."""
        if not self._wake_requested:
            self._wake_requested = True
            loop.call_soon_threadsafe(self.wake.set)

    # -- one sync ----------------------------------------------------------------------

    async def sync_once(self, *, upkeep: bool = True) -> bool:
        """Publish what the spool has after our position; True if anything was."""
        assert self.position is not None
        started = time.perf_counter()
        self._last_sync_started = self.clock()
        published = await self.segments.publish_pending(self.position)
        if upkeep:
            assert self.position is not None
            await self.upkeep.run(self.position, self._publish_snapshot)
        self._last_sync = self.clock()
        if published:
            self.health.status(
                state=ReplicaState.OK,
                last_error=None,
                add={"syncs": 1, "sync_seconds_total": time.perf_counter() - started},
            )
        return published

    # -- generations and snapshots ------------------------------------------------------

    def _needs_new_generation(self) -> bool:
        assert self.position is not None
        return self.progress.detached or self.position.engine_generation != self.engine.generation

    async def _start(self) -> None:
        """Open the replica and find or create this replica's generation."""
        position, new = await open_generation(
            self.writer,
            self.engine,
            name=self.name,
            detached=self.progress.detached,
            resume=self.position is None,
            detach_reason=self._detach_reason,
            log=self.log,
        )
        self.position = position
        if not new:
            self._publish_progress()
            self.health.status(
                state=ReplicaState.OK, generation=position.generation, published_txid=position.txid
            )
            self.log(
                "info",
                "resumed",
                replica=self.name,
                generation=position.generation,
                txid=position.txid,
            )
            return
        self._detach_reason = ""
        self._publish_progress(detached=False)
        await self._publish_snapshot()

    async def _reload_tip(self) -> None:
        """Continue from the replica's tip (``generation_start.reload_tip``)."""
        position = self.position
        assert position is not None
        tip_txid = await reload_tip(position, self.engine)
        self.segments.staged.clear()  # they continue the old position
        self._tip_stale = False
        self._publish_progress()
        self.log(
            "info",
            "resumed",
            replica=self.name,
            generation=position.generation,
            txid=tip_txid,
            reason="a record of ours was already stored",
        )
        self.health.status(published_txid=position.txid)

    async def _publish_snapshot(self) -> None:
        """Upload a snapshot at the current txid and publish it (record 0 if new)."""
        position = self.position
        assert position is not None

        async def publish_through(txid: int) -> bool:
            return await self.segments.publish_pending(position, through_txid=txid)

        await self.snapshots.publish(position, publish_through)

    # -- detaching ---------------------------------------------------------------------

    def _lost_place(self, exc: SpoolGap) -> None:
        """Start this replica over in a new generation (loudly): its history past the
        spool's start is gone from the spool, or too large for a segment, and
        retrying would never succeed."""
        if isinstance(exc, TransactionTooLarge):  # not a fault: a VACUUM, a bulk load
            level, event = "warning", "transaction too large for a segment"
        else:
            level, event = "error", "replica lost its place in the spool"
        publish_and_log(
            self.board,
            self.log,
            level,
            event,
            self.db_path,
            str(exc),
            replica=self.name,
            error=str(exc),
            action="a new generation starts from a fresh snapshot",
        )
        self._detach_reason = str(exc)
        self._publish_progress(detached=True)
        self.board.update_replica(self.db_path, self.name, state=ReplicaState.DETACHED)


async def _wait_any(stop: asyncio.Event, other: asyncio.Event | None, timeout: float) -> None:
    waiters: list[Awaitable] = [stop.wait()]
    if other is not None:
        waiters.append(other.wait())
    tasks = [asyncio.ensure_future(w) for w in waiters]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
