"""Publishing segments: one sync of what the spool holds past a replica's position.

A sync uploads every spooled transaction after the replica's published txid
as segments of about ``SEGMENT_TARGET_BYTES`` (``SegmentBuilder``), then
publishes ONE index record naming them, through the replica's
``GenerationWriter``. While the sync interval runs, each *full* segment the
spool holds is uploaded at once ("staged"); the next sync names the staged
segments and the rest in its one record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from litetool.crashpoints import crash_point
from litetool.engine.runtime.status import EventKind, publish_and_log
from litetool.engine.sync.generation_start import EngineView, ReplicaPosition
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.engine.sync.segment_build import SegmentBuilder, SpoolGap
from litetool.errors import LitetoolError
from litetool.storage import SegmentDetail, SegmentEntry
from litetool.storage.generation_writer import GenerationWriter

MAX_SEGMENTS_PER_RECORD = 64
# While the engine brakes the application for a slow replica (backpressure),
# a record names at most this many, so the spool is trimmed sooner.
SEGMENTS_PER_RECORD_UNDER_PRESSURE = 16
# A busy replica logs one "replicated" line this often, or once this many
# transactions were published (each sync is logged at debug level).
SUMMARY_SECONDS = 10.0
SUMMARY_TRANSACTIONS = 1000


class SegmentPublisher:
    """Stages and publishes the segments of one replica."""

    def __init__(
        self,
        *,
        engine: EngineView,
        writer: GenerationWriter,
        health: ReplicaHealth,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.health = health
        self.clock = clock
        self.summary = SyncSummary()
        self._builder: SegmentBuilder | None = None  # once the engine has a spool
        # The last sync stopped at MAX_SEGMENTS_PER_RECORD with more waiting.
        self.backlog = False
        # Full segments uploaded while waiting for the sync interval, not yet
        # named by a record: (generation, entry, commit time of its last txid).
        self.staged: list[tuple[str, SegmentEntry, int]] = []

    @property
    def builder(self) -> SegmentBuilder:
        """Builds this replica's segments from the engine's spool (made at first use)."""
        if self._builder is None:
            self._builder = SegmentBuilder(self.engine.spool, self.health.name)
        return self._builder

    @property
    def record_full(self) -> bool:
        """A record's worth is staged: publish it now."""
        return len(self.staged) >= MAX_SEGMENTS_PER_RECORD

    async def stage(self, position: ReplicaPosition) -> bool | None:
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
        self.drop_stale(position)
        txid = self.staged[-1][1].last_txid if self.staged else position.txid
        if not self.builder.full_segment_after(txid):
            return False
        try:
            uploaded = await self._upload_after(txid, None)
        except (LitetoolError, OSError, SpoolGap):
            return None
        if uploaded is None:
            return False
        entry, last_time_us, _backlog = uploaded
        self.staged.append((position.generation, entry, last_time_us))
        self.health.status(**self.health.traffic())
        return True

    def drop_stale(self, position: ReplicaPosition | None) -> None:
        """Forget staged segments that no longer continue *position*."""
        if not self.staged:
            return
        generation, first, _ = self.staged[0]
        if (
            position is None
            or generation != position.generation
            or first.first_txid != position.txid + 1
        ):
            self.staged.clear()  # unreferenced objects: GC removes them

    async def publish_pending(
        self, position: ReplicaPosition, through_txid: int | None = None
    ) -> bool:
        """Upload spooled transactions as segments of about ``SEGMENT_TARGET_BYTES``
        (one while the backlog is small), then publish ONE record naming them.

        Memory stays at about one segment whatever the backlog.
        """
        entries: list[SegmentEntry] = []
        txid = position.txid
        last_time_us = 0
        self.backlog = False
        # Segments staged while waiting come first (up to ``through_txid``).
        self.drop_stale(position)
        for _generation, entry, time_us in self.staged:
            if through_txid is not None and entry.last_txid > through_txid:
                break
            entries.append(entry)
            txid, last_time_us = entry.last_txid, time_us
        self.staged.clear()
        while True:
            # Under backpressure records come more often: the spool is trimmed
            # to published records only (each record costs a request).
            if self.engine.backpressure:
                limit = SEGMENTS_PER_RECORD_UNDER_PRESSURE
            else:
                limit = MAX_SEGMENTS_PER_RECORD
            if len(entries) >= limit:
                self.backlog = True  # the next sync goes on at once
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
            self.health.progress()  # nothing was waiting
            return False
        await self.writer.publish(segments=tuple(entries))
        self.health.progress()
        position.records_since_compaction += 1
        first = entries[0].first_txid
        stored = sum(e.stored_bytes for e in entries)
        self.health.published(
            position.generation, position.txid, last_time_us, int(self.clock() * 1e6)
        )
        health = self.health
        publish_and_log(
            health.board,
            health.log,
            "debug",
            "synced",
            health.db_path,
            f"txids {first}..{txid} to {health.name}",
            kind=EventKind.SYNCED,
            shown=("bytes",),
            event_fields={"first_txid": first, "last_txid": txid},
            replica=health.name,
            generation=position.generation,
            txids=f"{first}..{txid}",
            segments=len(entries),
            bytes=stored,
        )
        self.summary.add(position.generation, first, txid, len(entries), stored)
        if self.summary.due(time.monotonic()):
            self.log_summary()
        return True

    def log_summary(self) -> None:
        """One info line for the syncs since the last one (``SyncSummary``)."""
        fields = self.summary.take(time.monotonic())
        if fields:
            self.health.log("info", "replicated", replica=self.health.name, **fields)

    async def _upload_after(
        self, txid: int, through_txid: int | None
    ) -> tuple[SegmentEntry, int, bool] | None:
        """Build and upload the next segment after ``txid``: its entry, the
        commit time of its last txid, and whether more was waiting."""
        built = await asyncio.to_thread(self.builder.build_after, txid, through_txid)
        if built is None:
            return None
        segment = built.segment
        try:
            entry = await self.writer.put_segment(
                segment.payload,
                first_txid=segment.first_txid,
                page_size=segment.page_size,
                frames=segment.frame_count,
                detail=SegmentDetail(segment.times_us, segment.db_pages),
            )
        finally:
            self.builder.let_go()
        crash_point("segment-uploaded")
        self.health.progress()
        return entry, built.last_time_us, built.backlog


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
