"""Publishing a snapshot to one replica: record 0 of a new generation, or a
later one (``snapshot-interval``).

The capture thread takes the snapshot (``EngineView.take_snapshot``, a read
transaction at exactly one txid); the replica publishes the segments up to
that txid first (a generation stays contiguous), uploads the image's chunks
(only those the replica does not have), then publishes the record naming it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from litetool.crashpoints import crash_point
from litetool.engine.runtime.status import EventKind, ReplicaState, publish_and_log
from litetool.engine.sync.generation_start import DatabaseImage, EngineView, ReplicaPosition
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.storage import DEFAULT_CHUNK_SIZE


class SnapshotPublisher:
    """Takes and publishes snapshots for one replica."""

    def __init__(
        self, *, engine: EngineView, health: ReplicaHealth, clock: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.health = health
        self.clock = clock

    async def publish(
        self,
        position: ReplicaPosition,
        publish_through: Callable[[int], Awaitable[bool]],
    ) -> None:
        """Upload a snapshot at the current txid and publish it (record 0 if new).
        *publish_through(txid)* publishes the spooled segments up to *txid*
        (False when there was nothing to publish)."""
        health = self.health
        writer = position.writer
        health.status(state=ReplicaState.SNAPSHOTTING)
        started = time.perf_counter()
        reason = writer.reason  # record 0's, when it is not published yet
        source = await self.engine.take_snapshot()
        try:
            try:
                # Keep the generation contiguous: publish the segments up to the
                # snapshot first.
                while 0 <= position.txid < source.txid:
                    if not await publish_through(source.txid):
                        break
                entry = await writer.put_snapshot(
                    self._chunks(source, DEFAULT_CHUNK_SIZE),
                    txid=source.txid,
                    time_us=source.time_us,
                    page_size=source.page_size,
                    page_count=source.page_count,
                )
                crash_point("snapshot-uploaded")
            finally:
                await asyncio.to_thread(source.close)
            await writer.publish(snapshots=(entry,))
            position.records_since_compaction += 1
            position.snapshot_time_us = int(self.clock() * 1e6)
        finally:
            # Published (our position now holds the spool) or given up.
            self.engine.release_snapshot(source)
        health.published(
            position.generation, position.txid, source.time_us, int(self.clock() * 1e6)
        )
        seconds = time.perf_counter() - started
        health.status(state=ReplicaState.OK, add={"snapshots": 1})
        publish_and_log(
            health.board,
            health.log,
            "info",
            "snapshot",
            health.db_path,
            f"snapshot at txid {source.txid} to {health.name}",
            kind=EventKind.SNAPSHOT,
            shown=("txid",),
            event_fields={"bytes": entry.stored_bytes},
            replica=health.name,
            generation=position.generation,
            txid=source.txid,
            reason=reason if reason is not None else "snapshot-interval",
            stored_bytes=entry.stored_bytes,
            seconds=round(seconds, 3),
        )

    async def _chunks(self, source: DatabaseImage, chunk_size: int) -> AsyncIterator[bytes]:
        for index in range(source.chunk_count(chunk_size)):
            yield await asyncio.to_thread(source.read_chunk, index, chunk_size)
            # The chunk before this one is stored: a long snapshot is progress.
            self.health.progress()
