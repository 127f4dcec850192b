"""One replica's sync loop: spool -> segment + index record, snapshots, upkeep.

Each replica of a database runs one ``ReplicaSync.run`` task. A sync uploads
every spooled transaction after the replica's published txid as one segment
(several when the backlog exceeds ``SEGMENT_TARGET_BYTES``), then publishes the
index record that names it: the commit point. A busy database therefore costs
about one segment PUT and one record PUT per sync interval, and an idle one
costs nothing: the loop sleeps until the capture side signals new
transactions.

The replica's generation normally follows the engine's: record 0 of a
generation holds a snapshot taken when the replica first needs one. A replica
detached because the spool hit its cap restarts from a fresh snapshot in a
generation of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from litetool.crashpoints import crash_point
from litetool.engine.buffers import ReusableBuffer
from litetool.engine.segment_build import (
    BuiltSegment,
    build_segment_from_spool,
    segment_payload_bytes,
)
from litetool.engine.snapshot import SnapshotSource
from litetool.engine.spool import Spool
from litetool.engine.status import StatusBoard
from litetool.engine.supervisor import report_failure
from litetool.errors import (
    ConfigError,
    LitetoolError,
    ObjectNotFound,
    OwnRecordExists,
    ReplicaConflict,
    StorageThrottled,
    StorageUnavailable,
)
from litetool.storage import (
    DEFAULT_CHUNK_SIZE,
    IndexRecord,
    ObjectKind,
    Replica,
    SegmentDetail,
    SegmentEntry,
    SnapshotEntry,
    new_generation_id,
)

# A segment holds about this much WAL; a sync of a larger backlog uploads several
# and names them all in one record.
SEGMENT_TARGET_BYTES = 4 << 20
MAX_SEGMENTS_PER_RECORD = 64
# A segment holds whole transactions and is built in memory (at its peak about
# three times its size: the payload, its compressed form, the request body). A
# spool record larger than this (one huge transaction: a VACUUM, a bulk load)
# goes up as a snapshot instead, whose chunks are read and sent 4 MiB at a time:
# the replica starts a new generation from the database (``TransactionTooLarge``).
MAX_SEGMENT_PAYLOAD_BYTES = 256 << 20
# Segment buffers that grew past this for one large segment are let go after
# it: a huge transaction must not keep its size in RSS for the process's life.
KEEP_SEGMENT_BUFFER_BYTES = 2 * SEGMENT_TARGET_BYTES
# While the engine brakes the application for a slow replica (backpressure),
# a record names at most this many, so the spool is trimmed sooner.
SEGMENTS_PER_RECORD_UNDER_PRESSURE = 16
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# While a replica waits out an outage (the store unreachable, not answering in
# time, failing with 5xx), it asks the store this often whether it answers again
# (``Replica.probe``, a HEAD) and goes on at once when it does: otherwise the
# catch-up after an outage waits for a backoff grown to up to a minute. Not for
# throttling (the store asked for fewer requests) nor for errors no retry heals.
PROBE_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 2.0
# A replica that stored nothing for this long with work waiting (a request
# hanging in an outage, retried inside the store client) no longer counts as
# reachable, so it never brakes the application (see ``reachable``).
PROGRESS_WINDOW_SECONDS = 10.0
COMPACT_EVERY_RECORDS = 256
# Two syncs start at least this far apart, even at a sync interval of 0s: the
# commits that arrive meanwhile share one segment and one record instead of
# costing two PUTs each (at 200 tx/s, about one sync per 4 commits instead of
# one per commit), for at most this much more lag.
MIN_SYNC_SPACING_SECONDS = 0.02
# A busy replica logs one "replicated" line this often, or once this many
# transactions were published (each sync is logged at debug level).
SUMMARY_SECONDS = 10.0
SUMMARY_TRANSACTIONS = 1000
# While the sync interval runs, the spool is checked this often for a full
# segment to upload ahead of the sync (``_stage_full_segment``).
STAGE_POLL_SECONDS = 0.1
GC_INTERVAL_SECONDS = 3600.0
LEASE_TTL_SECONDS = 60.0


class SpoolGap(Exception):
    """The spool no longer holds the transactions after a replica's position (the
    spool cap dropped them): only a new generation from a snapshot continues it."""


class TransactionTooLarge(SpoolGap):
    """The next spooled transactions are too large for one segment
    (``MAX_SEGMENT_PAYLOAD_BYTES``): a new generation from a snapshot holds them."""


@dataclass(slots=True)
class ReplicaPosition:
    """What this replica has published."""

    generation: str  # the replica-side generation id
    engine_generation: str  # the engine generation whose txids it carries
    txid: int
    next_seq: int
    snapshot_time_us: int
    snapshot_txid: int = -1
    records_since_compaction: int = 0


@dataclass(frozen=True, slots=True)
class _Built:
    segment: BuiltSegment
    last_time_us: int
    backlog: bool  # the spool had more than a segment's worth


class EngineView(Protocol):
    """What a replica task needs from the capture side (``DatabaseReplication``)."""

    generation: str
    generation_reason: str
    txid: int
    last_time_us: int
    spool: Spool
    writer_id: str
    backpressure: bool  # the spool fills for a slow replica: publish sooner

    async def take_snapshot(self) -> SnapshotSource: ...

    def release_snapshot(self, source: SnapshotSource) -> None: ...

    def fenced(self, replica: str, exc: ReplicaConflict) -> None: ...

    def unusable(self, replica: str, exc: LitetoolError) -> bool: ...


class SyncSummary:
    """What the syncs since the last summary published: a busy replica logs one
    info line every SUMMARY_SECONDS (or SUMMARY_TRANSACTIONS) instead of one
    per sync; each sync is still logged at debug level."""

    def __init__(self) -> None:
        self._since = time.monotonic()
        self._clear()

    def _clear(self) -> None:
        self.generation = ""
        self.first = self.last = 0
        self.syncs = self.segments = self.bytes = 0

    def add(self, generation: str, first: int, last: int, segments: int, stored: int) -> None:
        if generation != self.generation:
            self._clear()
            self.generation, self.first = generation, first
        self.last = last
        self.syncs += 1
        self.segments += segments
        self.bytes += stored

    def seconds_left(self, now: float) -> float:
        """Until the next summary is due (inf when there is nothing to say)."""
        if not self.syncs:
            return float("inf")
        return max(0.0, self._since + SUMMARY_SECONDS - now)

    def due(self, now: float) -> bool:
        return self.syncs > 0 and (
            now - self._since >= SUMMARY_SECONDS
            or self.last - self.first + 1 >= SUMMARY_TRANSACTIONS
        )

    def take(self, now: float) -> dict:
        fields = {}
        if self.syncs:
            fields = {
                "generation": self.generation,
                "txids": f"{self.first}..{self.last}",
                "transactions": self.last - self.first + 1,
                "syncs": self.syncs,
                "segments": self.segments,
                "bytes": self.bytes,
                "seconds": round(now - self._since, 1),
            }
        self._since = now
        self._clear()
        return fields


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
        self.snapshot_interval = snapshot_interval
        self.retention = retention
        self.gc_grace = gc_grace
        self.log = log
        self.clock = clock
        self.position: ReplicaPosition | None = None
        self.detached = False
        # Set while a new generation's record 0 (its snapshot) is not published.
        self.needs_snapshot = False
        self.wake = asyncio.Event()
        # Set by ``notify`` (any thread) until the loop has seen the wake-up:
        # a burst of captures costs one cross-thread call, not one each.
        self._wake_requested = False
        self._lease = None
        self._summary = SyncSummary()
        self._last_sync = 0.0
        self._last_sync_started = 0.0
        self._last_gc = clock()
        self._failures = 0
        self._outage = False  # the last failure: the store unreachable or failing
        self._last_progress = time.monotonic()  # an object stored, or nothing to do
        self._headers = ReusableBuffer()
        self._compaction: asyncio.Task | None = None
        self._segment_buffer = ReusableBuffer()
        self._detach_reason = ""  # why the next new generation starts, when detached
        # The last sync stopped at MAX_SEGMENTS_PER_RECORD with more waiting.
        self._backlog = False
        # Full segments uploaded while waiting for the sync interval, not yet
        # named by a record: (generation, entry, commit time of its last txid).
        self._staged: list[tuple[str, SegmentEntry, int]] = []
        # The spool's appended_bytes at which a full segment may be waiting.
        self._stage_recheck_at = 0
        # A record we meant to publish was already stored by an earlier attempt of
        # ours (its answer lost): our position is behind the replica's tip.
        self._tip_stale = False
        # Set by the first sync that succeeds. Before it, an error no retry can
        # heal (StorageMisconfigured, ConfigError) makes the replica unusable:
        # the engine stops when no replica of the database can work.
        self._proven = False
        self.unusable_error: LitetoolError | None = None
        # The problem of the last error that no retry heals (logged once only).
        self._reported: str | None = None

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until ``stop`` is set, then make one final sync."""
        self._status(state="starting", url=self.replica.display_url)
        while not stop.is_set():
            try:
                if self.position is None or self._needs_new_generation():
                    await self._start()
                elif self._tip_stale:
                    await self._reload_tip()
                elif self.needs_snapshot:
                    await self._publish_snapshot(reason=self._pending_reason)
                await self.sync_once()
                self._failures = 0
                self._proven = True
                self.unusable_error = None
                self._reported = None
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
                self._failed(exc, state="conflict")
                self.engine.fenced(self.name, exc)
                return
            except (LitetoolError, OSError) as exc:
                state = "backoff"
                if not self._proven and isinstance(exc, LitetoolError) and _cannot_heal(exc):
                    # The replica never worked and its answer says it cannot
                    # (credentials, permissions, no bucket, configuration). With
                    # no other replica that works, the process stops with this
                    # one error instead of retrying forever.
                    self.unusable_error = exc
                    if self.engine.unusable(self.name, exc):
                        await self._give_up(exc)
                        return
                    state = "error"
                # Storage errors, and the engine's (a snapshot that could not be
                # opened, a damaged spool file): retried with backoff. So is a
                # misconfigured replica next to one that works, or one that
                # worked before (keys rotated, a bucket policy): it recovers
                # once fixed, its error logged once.
                self._failed(exc, state=state)
            except Exception as exc:  # a bug: loudly, with its traceback, then retried
                report_failure(
                    self.board, self.log, self.db_path, "replica sync", exc, replica=self.name
                )
                self._failed(exc, state="backoff")
            if self._failures:
                delay = min(
                    BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** (self._failures - 1)
                )
                await self._back_off(stop, delay)
                continue
            await self._wait_for_work(stop)
        await self._final_sync()

    async def _give_up(self, exc: LitetoolError) -> None:
        """Stop this replica: the engine stops replication with *exc* (see ``run``)."""
        self._status(state="error", last_error=exc.render())
        self.board.publish("error", self.db_path, exc.render(), replica=self.name)
        if self._lease is not None:
            with contextlib.suppress(LitetoolError, OSError):
                await self.replica.release_lease(self._lease)
            self._lease = None

    async def _back_off(self, stop: asyncio.Event, delay: float) -> None:
        """Wait *delay* before the next attempt; after an outage, only until the store
        answers a probe (every ``PROBE_SECONDS``)."""
        deadline = time.monotonic() + delay
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await _wait_any(stop, None, min(left, PROBE_SECONDS) if self._outage else left)
            if self._outage and not stop.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(self.replica.probe(), PROBE_TIMEOUT_SECONDS):
                        return

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        # Sleep until there are new transactions (or periodic upkeep is due);
        # then keep at least sync_interval between two syncs. A sync that left
        # a backlog (a record's worth of segments and more waiting) goes on at
        # once: no capture may come to wake it, and the interval is for batching.
        if self._backlog:
            return
        upkeep = self._seconds_to_upkeep()
        summary_in = self._summary.seconds_left(time.monotonic())
        await _wait_any(stop, self.wake, min(upkeep, summary_in))
        if self._summary.due(time.monotonic()):
            self._log_summary()  # a burst ended: its line comes on time
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
            if remaining <= 0 or len(self._staged) >= MAX_SEGMENTS_PER_RECORD:
                return  # a record's worth is staged: publish it now
            if staging:
                staged = await self._stage_full_segment()
                if staged:
                    continue
                staging = staged is not None  # after a failure, the sync retries
            await _wait_any(stop, None, min(remaining, STAGE_POLL_SECONDS))

    async def _stage_full_segment(self) -> bool | None:
        """While the sync interval runs, upload the next *full* segment, if the
        spool holds one; the next sync names it in its record.

        At full speed this spreads the building and uploading over the
        interval instead of doing it all at its end (the replica then keeps up
        with a writer filling the WAL as fast as the disk takes it); the
        requests are the same, and a partial segment still waits for the
        sync, so a slow trickle of commits still costs one segment per
        interval. False when there is nothing (more) to stage; None when it
        failed: the sync then does the work, and reports what went wrong.
        """
        position = self.position
        if position is None or self.needs_snapshot or self._needs_new_generation():
            return False
        spool = self.engine.spool
        if spool.appended_bytes < self._stage_recheck_at:
            return False  # too little appended since the last look to fill one
        self._drop_stale_staged()
        txid = self._staged[-1][1].last_txid if self._staged else position.txid
        waiting = spool.bytes_after(txid, SEGMENT_TARGET_BYTES)
        if waiting <= SEGMENT_TARGET_BYTES:
            self._stage_recheck_at = spool.appended_bytes + SEGMENT_TARGET_BYTES - waiting
            return False
        try:
            uploaded = await self._upload_after(txid, None)
        except (LitetoolError, OSError, SpoolGap):
            return None
        if uploaded is None:
            return False
        entry, last_time_us, _backlog = uploaded
        self._staged.append((position.generation, entry, last_time_us))
        self._status(**self._traffic())
        return True

    def _drop_stale_staged(self) -> None:
        """Forget staged segments that no longer continue our position."""
        position = self.position
        if not self._staged:
            return
        generation, first, _ = self._staged[0]
        if (
            position is None
            or generation != position.generation
            or first.first_txid != position.txid + 1
        ):
            self._staged.clear()  # unreferenced objects: GC removes them

    async def _final_sync(self) -> None:
        if self._compaction is not None:
            # Not needed for a restore; the next run compacts again.
            self._compaction.cancel()
            await asyncio.gather(self._compaction, return_exceptions=True)
            self._compaction = None
        try:
            if self.position is not None:
                try:
                    if self._tip_stale and not self._needs_new_generation():
                        await self._reload_tip()
                    if not self._needs_new_generation() and not self.needs_snapshot:
                        while await self.sync_once(upkeep=False):
                            pass
                except SpoolGap as exc:
                    self._lost_place(exc)
                if self._needs_new_generation() or self.needs_snapshot:
                    # What the spool lost is in the database: a last snapshot (only
                    # its changed chunks are uploaded) so the replica ends current.
                    if self._needs_new_generation():
                        await self._start()
                    else:
                        await self._publish_snapshot(reason=self._pending_reason)
                    while await self.sync_once(upkeep=False):
                        pass
            self._log_summary()
            if self._lease is not None:
                await self.replica.release_lease(self._lease)
            self._status(state="stopped")
        except (LitetoolError, OSError) as exc:
            self.log("error", "final sync failed", replica=self.name, error=str(exc))
            self._status(state="stopped", last_error=str(exc))

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
        published = await self._publish_pending()
        if upkeep:
            await self._upkeep()
        self._last_sync = self.clock()
        if published:
            status = self._replica_status()
            self._status(
                state="ok",
                syncs=status.syncs + 1,
                sync_seconds_total=status.sync_seconds_total + (time.perf_counter() - started),
                last_error=None,
            )
        return published

    async def _publish_pending(self, through_txid: int | None = None) -> bool:
        """Upload spooled transactions as segments of about ``SEGMENT_TARGET_BYTES``
        (one while the backlog is small), then publish ONE record naming them.

        Memory stays at about one segment whatever the backlog.
        """
        position = self.position
        assert position is not None
        entries: list[SegmentEntry] = []
        txid = position.txid
        last_time_us = 0
        self._backlog = False
        # Segments staged while waiting come first (up to ``through_txid``).
        self._drop_stale_staged()
        for _generation, entry, time_us in self._staged:
            if through_txid is not None and entry.last_txid > through_txid:
                break
            entries.append(entry)
            txid, last_time_us = entry.last_txid, time_us
        self._staged.clear()
        while True:
            # Under backpressure records come more often: the spool is trimmed
            # to published records only (each record costs a request).
            if self.engine.backpressure:
                limit = SEGMENTS_PER_RECORD_UNDER_PRESSURE
            else:
                limit = MAX_SEGMENTS_PER_RECORD
            if len(entries) >= limit:
                self._backlog = True  # the next sync goes on at once
                break
            uploaded = await self._upload_after(txid, through_txid)
            if uploaded is None:
                break
            entry, last_time_us, backlog = uploaded
            entries.append(entry)
            txid = entry.last_txid
            if not backlog:
                break  # what arrived meanwhile goes with the next sync
        if not entries:
            self._last_progress = time.monotonic()  # nothing was waiting
            return False
        await self._publish(segments=tuple(entries))
        first = entries[0].first_txid
        stored = sum(e.stored_bytes for e in entries)
        position.txid = txid
        self._after_publish(last_time_us)
        self.board.publish(
            "synced",
            self.db_path,
            f"txids {first}..{txid} to {self.name}",
            replica=self.name,
            first_txid=first,
            last_txid=txid,
            bytes=stored,
        )
        self.log(
            "debug",
            "synced",
            replica=self.name,
            generation=position.generation,
            txids=f"{first}..{txid}",
            segments=len(entries),
            bytes=stored,
        )
        self._summary.add(position.generation, first, txid, len(entries), stored)
        if self._summary.due(time.monotonic()):
            self._log_summary()
        return True

    def _log_summary(self) -> None:
        """One info line for the syncs since the last one (``SyncSummary``)."""
        fields = self._summary.take(time.monotonic())
        if fields:
            self.log("info", "replicated", replica=self.name, **fields)

    async def _upload_after(
        self, txid: int, through_txid: int | None
    ) -> tuple[SegmentEntry, int, bool] | None:
        """Build and upload the next segment after ``txid``: its entry, the
        commit time of its last txid, and whether more was waiting."""
        built = await asyncio.to_thread(self._build_after, txid, through_txid)
        if built is None:
            return None
        try:
            ref = await self.replica.put_object(ObjectKind.SEGMENT, built.segment.payload)
        finally:
            self._segment_buffer.shrink(KEEP_SEGMENT_BUFFER_BYTES)
            self._headers.shrink(KEEP_SEGMENT_BUFFER_BYTES)
        crash_point("segment-uploaded")
        self._last_progress = time.monotonic()
        segment = built.segment
        entry = SegmentEntry.summarise(
            ref.digest,
            segment.first_txid,
            ref.stored_bytes,
            segment.page_size,
            segment.frame_count,
            SegmentDetail(segment.times_us, segment.db_pages),
            keep_detail=False,
        )
        return entry, built.last_time_us, built.backlog

    def _build_after(self, txid: int, through_txid: int | None) -> _Built | None:
        """The next segment after ``txid`` from the spool (in a worker thread).

        Reads into and builds in this replica's own buffers: a sync costs no
        fresh multi-MiB allocations (see ``litetool.engine.buffers``).
        """
        located = self.engine.spool.locate_after(txid, max_bytes=SEGMENT_TARGET_BYTES)
        try:
            left_out = located.left_out
            if through_txid is not None:
                keep = [i for i, r in enumerate(located.records) if r.last_txid <= through_txid]
                located.records = [located.records[i] for i in keep]
                located.sources = [located.sources[i] for i in keep]
            records = located.records
            if not records:
                return None
            if records[0].first_txid != txid + 1:
                raise SpoolGap(
                    f"the spool no longer holds txid {txid + 1} for replica {self.name} "
                    f"(it starts at {records[0].first_txid})"
                )
            # Only a first record may exceed the segment target (locate_after).
            first = records[0]
            size = segment_payload_bytes(records[:1])
            if size > MAX_SEGMENT_PAYLOAD_BYTES:
                raise TransactionTooLarge(
                    f"txids {first.first_txid}..{first.last_txid} hold {size >> 20} MiB of "
                    f"pages, more than one segment may ({MAX_SEGMENT_PAYLOAD_BYTES >> 20} MiB)"
                )
            segment = build_segment_from_spool(located, self._segment_buffer, self._headers)
        finally:
            located.close()
        # A full segment's worth was there: more is waiting, so it goes in
        # the same record; what arrives meanwhile goes with the next sync.
        backlog = left_out and (through_txid is None or segment.last_txid < through_txid)
        return _Built(segment, records[-1].last_time_us, backlog)

    async def _publish(
        self,
        *,
        snapshots: tuple[SnapshotEntry, ...] = (),
        segments: tuple[SegmentEntry, ...] = (),
        reason: str | None = None,
    ) -> None:
        """Publish the next index record of our generation (the commit point)."""
        position = self.position
        assert position is not None
        record = IndexRecord(
            generation=position.generation,
            seq=position.next_seq,
            created_us=int(self.clock() * 1e6),
            writer=self.engine.writer_id,
            snapshots=snapshots,
            segments=segments,
            reason=reason,
        )
        if self._lease is not None:
            self._lease = await self.replica.renew_lease_if_needed(self._lease)
        await self.replica.publish_record(record)
        crash_point("record-published")
        self._last_progress = time.monotonic()
        self.position.next_seq = record.seq + 1
        self.position.records_since_compaction += 1

    def _after_publish(self, time_us: int) -> None:
        assert self.position is not None
        self._status(
            generation=self.position.generation,
            published_txid=self.position.txid,
            published_time_us=time_us,
            last_sync_us=int(self.clock() * 1e6),
            **self._traffic(),
        )

    def _traffic(self) -> dict[str, dict[str, int]]:
        """Requests and bytes to the replica so far, by kind (status fields)."""
        stats = self.replica.stats.snapshot()
        return {
            "requests": {k: c.requests for k, c in stats.items()},
            "bytes": {k: c.bytes for k, c in stats.items()},
        }

    # -- generations and snapshots ------------------------------------------------------

    def _needs_new_generation(self) -> bool:
        assert self.position is not None
        return self.detached or self.position.engine_generation != self.engine.generation

    async def _start(self) -> None:
        """Open the replica and find or create this replica's generation."""
        await self.replica.ensure_format(create=True)
        engine_generation = self.engine.generation
        if self._lease is None:
            self._lease = await self.replica.acquire_lease(
                self.engine.writer_id, LEASE_TTL_SECONDS, engine_generation
            )
        cannot_continue = ""
        if not self.detached and self.position is None:
            resumed, cannot_continue = await self._resume(engine_generation)
            if resumed:
                return
        if cannot_continue:
            # The replica has records of this generation that the spool does
            # not continue: a generation of its own, like a detached replica.
            self.log(
                "warning",
                "replica cannot continue its generation",
                replica=self.name,
                generation=engine_generation,
                reason=cannot_continue,
                action="a new generation starts from a fresh snapshot",
            )
            self.detached = True
        generation = new_generation_id() if self.detached else engine_generation
        if not self.detached:
            reason = self.engine.generation_reason
        else:
            reason = (
                cannot_continue
                or self._detach_reason
                or "the replica was unreachable until the spool reached its size cap"
            )
        self._detach_reason = ""
        self.position = ReplicaPosition(generation, engine_generation, -1, 0, 0)
        self.needs_snapshot = True
        self._pending_reason = reason
        self.detached = False
        await self._publish_snapshot(reason=reason)

    async def _resume(self, engine_generation: str) -> tuple[bool, str]:
        """Continue a generation this replica already has records of.

        Returns (resumed, why not): why is empty when the replica has no
        record of the generation (it starts it), else the generation is the
        replica's but cannot go on here.
        """
        try:
            tip = await self.replica.load_tip(engine_generation)
        except ObjectNotFound:
            return False, ""
        if tip.last_txid > self.engine.txid:
            # A spool tail lost to a power cut after its upload: the txids
            # after the spool's would name other transactions.
            return False, (
                f"the replica has txid {tip.last_txid} of generation {engine_generation}, "
                f"the local spool only up to {self.engine.txid}"
            )
        spool_first = self.engine.spool.first_txid
        if tip.last_txid < self.engine.txid and (
            spool_first is None or spool_first > tip.last_txid + 1
        ):
            return False, (
                f"the local spool no longer holds the transactions after the replica's "
                f"txid {tip.last_txid}"
            )
        self.position = ReplicaPosition(
            engine_generation,
            engine_generation,
            tip.last_txid,
            tip.next_seq,
            tip.snapshot_time_us,
            tip.snapshot_txid,
            # Counted from the replica, not from this process's start: a litetool that
            # restarts often must still compact (each resume reads these records).
            tip.records_since_compaction,
        )
        self._status(state="ok", generation=engine_generation, published_txid=tip.last_txid)
        self.log(
            "info",
            "resumed",
            replica=self.name,
            generation=engine_generation,
            txid=tip.last_txid,
        )
        return True, ""

    async def _reload_tip(self) -> None:
        """Continue from the replica's tip of our generation: an earlier attempt of
        ours at the record we meant to publish next was stored although its answer
        was lost (``OwnRecordExists``), so the replica holds more than our position
        says. Without this, every later attempt would meet that record again."""
        position = self.position
        assert position is not None
        tip = await self.replica.load_tip(position.generation)
        if tip.next_seq <= position.next_seq:
            # The listing does not show that record yet: try again later.
            raise StorageUnavailable(
                f"the listing of {self.replica.display_url} does not show record "
                f"{position.next_seq} of generation {position.generation} yet"
            )
        if tip.last_txid > self.engine.txid:
            raise SpoolGap(
                f"the replica has txid {tip.last_txid}, the local spool only up to "
                f"{self.engine.txid}"
            )
        self._staged.clear()  # they continue the old position
        self._tip_stale = False
        self.log(
            "info",
            "resumed",
            replica=self.name,
            generation=position.generation,
            txid=tip.last_txid,
            reason="a record of ours was already stored",
        )
        position.txid = max(position.txid, tip.last_txid)
        position.next_seq = tip.next_seq
        position.snapshot_txid = tip.snapshot_txid
        self._status(published_txid=position.txid)

    async def _publish_snapshot(self, *, reason: str | None) -> None:
        """Upload a snapshot at the current txid and publish it (record 0 if new)."""
        position = self.position
        assert position is not None
        self._status(state="snapshotting")
        started = time.perf_counter()
        source = await self.engine.take_snapshot()
        try:
            try:
                # Keep the generation contiguous: publish the segments up to the
                # snapshot first.
                while 0 <= position.txid < source.txid:
                    if not await self._publish_pending(through_txid=source.txid):
                        break
                entry = await self.replica.put_snapshot(
                    _chunks(source, DEFAULT_CHUNK_SIZE, self),
                    txid=source.txid,
                    time_us=source.time_us,
                    page_size=source.page_size,
                    page_count=source.page_count,
                )
                crash_point("snapshot-uploaded")
            finally:
                await asyncio.to_thread(source.close)
            new = position.txid < 0
            await self._publish(snapshots=(entry,), reason=reason if new else None)
            position.txid = max(position.txid, source.txid)
            position.snapshot_time_us = int(self.clock() * 1e6)
            position.snapshot_txid = source.txid
            self.needs_snapshot = False
        finally:
            # Published (our position now holds the spool) or given up.
            self.engine.release_snapshot(source)
        self._after_publish(source.time_us)
        seconds = time.perf_counter() - started
        self._status(state="ok", snapshots=self._replica_status().snapshots + 1)
        self.board.publish(
            "snapshot",
            self.db_path,
            f"snapshot at txid {source.txid} to {self.name}",
            replica=self.name,
            txid=source.txid,
            bytes=entry.stored_bytes,
        )
        self.log(
            "info",
            "snapshot",
            replica=self.name,
            generation=position.generation,
            txid=source.txid,
            reason=reason if new else "snapshot-interval",
            stored_bytes=entry.stored_bytes,
            seconds=round(seconds, 3),
        )

    # -- upkeep: periodic snapshots, compaction, GC --------------------------------------

    def _seconds_to_upkeep(self) -> float:
        assert self.position is not None
        now = self.clock()
        due = [self._last_gc + GC_INTERVAL_SECONDS - now]
        if self.snapshot_interval > 0:
            due.append(self.position.snapshot_time_us / 1e6 + self.snapshot_interval - now)
        return max(0.05, min(due))

    async def _upkeep(self) -> None:
        position = self.position
        assert position is not None
        now = self.clock()
        if (
            self.snapshot_interval > 0
            and now - position.snapshot_time_us / 1e6 >= self.snapshot_interval
            and self.engine.txid > position.snapshot_txid
        ):
            await self._publish_snapshot(reason=None)
        if self._compaction is not None and self._compaction.done():
            self._compaction = None
        if position.records_since_compaction >= COMPACT_EVERY_RECORDS and self._compaction is None:
            # In the background: compaction reads the records since the last
            # compacted one (and that one), and syncs (at a sync interval of 0s,
            # many a second) must not wait for that. It writes only compacted
            # records, under keys of their own.
            position.records_since_compaction = 0
            self._compaction = asyncio.create_task(self._compact(position.generation))
        if now - self._last_gc >= GC_INTERVAL_SECONDS:
            self._last_gc = now
            report = await self.replica.collect_garbage(
                retention_seconds=self.retention,
                grace_seconds=self.gc_grace,
                now_us=int(now * 1e6),
            )
            self.log("info", "gc", replica=self.name, report=str(report))

    async def _compact(self, generation: str) -> None:
        try:
            await self.replica.compact(generation)
        except (LitetoolError, OSError) as exc:
            self.log("warning", "compaction failed", replica=self.name, error=str(exc))
        except Exception as exc:  # a bug: loudly; the next compaction tries again
            report_failure(self.board, self.log, self.db_path, "compaction", exc, replica=self.name)

    # -- status helpers ----------------------------------------------------------------

    @property
    def active_at(self) -> float:
        """When this replica last stored an object (or had nothing to store), monotonic."""
        return self._last_progress

    @property
    def reachable(self) -> bool:
        """Nothing failed since the last success, which is recent: an object
        stored (or nothing to store) within ``PROGRESS_WINDOW_SECONDS``. Read
        from the capture thread (plain attributes)."""
        recent = time.monotonic() - self._last_progress < PROGRESS_WINDOW_SECONDS
        return self._failures == 0 and recent

    def detach(self) -> None:
        """Give up on the spooled history for this replica (spool cap reached).

        Called from the capture thread: only flags are set here.
        """
        self.detached = True
        self.board.update_replica(self.db_path, self.name, state="detached")

    def _lost_place(self, exc: SpoolGap) -> None:
        """Start this replica over in a new generation (loudly): its history past the
        spool's start is gone from the spool, or too large for a segment, and
        retrying would never succeed."""
        if isinstance(exc, TransactionTooLarge):  # not a fault: a VACUUM, a bulk load
            level, event = "warning", "transaction too large for a segment"
        else:
            level, event = "error", "replica lost its place in the spool"
        self.log(
            level,
            event,
            replica=self.name,
            error=str(exc),
            action="a new generation starts from a fresh snapshot",
        )
        self.board.publish(level, self.db_path, str(exc), replica=self.name)
        self._detach_reason = str(exc)
        self.detached = True
        self.board.update_replica(self.db_path, self.name, state="detached")

    def _failed(self, exc: Exception, *, state: str) -> None:
        self._failures += 1
        self._outage = isinstance(exc, StorageUnavailable) and not isinstance(exc, StorageThrottled)
        message = exc.render() if isinstance(exc, LitetoolError) else f"{type(exc).__name__}: {exc}"
        status = self._replica_status()
        self._status(state=state, last_error=message, sync_errors=status.sync_errors + 1)
        if _cannot_heal(exc):
            # The same answer until someone fixes it: reported once (its message
            # names each request, the problem is the same).
            problem = getattr(exc, "problem", message)
            if problem == self._reported:
                self.log(
                    "debug", "sync failed", replica=self.name, error=message, attempt=self._failures
                )
                return
            self._reported = problem
        self.board.publish("error", self.db_path, message, replica=self.name)
        self.log("error", "sync failed", replica=self.name, error=message, attempt=self._failures)

    def _replica_status(self):
        for db in self.board.snapshot():
            if db.path == self.db_path:
                for replica in db.replicas:
                    if replica.name == self.name:
                        return replica
        from litetool.engine.status import ReplicaStatus

        return ReplicaStatus(name=self.name, url=self.replica.display_url)

    def _status(self, **changes) -> None:
        self.board.update_replica(self.db_path, self.name, **changes)


def _cannot_heal(exc: BaseException) -> bool:
    """Whether retrying cannot help until someone changes the configuration or
    the store: credentials, permissions, no bucket, wrong region, bad options."""
    return isinstance(exc, ConfigError) or getattr(exc, "retryable", True) is False


async def _chunks(source, chunk_size: int, sync: ReplicaSync) -> AsyncIterator[bytes]:
    for index in range(source.chunk_count(chunk_size)):
        yield await asyncio.to_thread(source.read_chunk, index, chunk_size)
        # The chunk before this one is stored: a long snapshot is progress.
        sync._last_progress = time.monotonic()


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
