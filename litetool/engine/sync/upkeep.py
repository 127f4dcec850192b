"""A replica's upkeep between syncs: periodic snapshots, compaction, GC.

After each sync (never in the final one), ``Upkeep.run`` publishes a snapshot
when ``snapshot-interval`` has passed since the last one and transactions
came since, starts a compaction in the background every
``COMPACT_EVERY_RECORDS`` records, and collects garbage every
``GC_INTERVAL_SECONDS`` (GC runs in the lease holder, between syncs:
docs/FORMAT.md section 8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from litetool.engine.runtime.supervisor import report_failure
from litetool.engine.sync.generation_start import EngineView, ReplicaPosition
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.errors import LitetoolError

COMPACT_EVERY_RECORDS = 256
GC_INTERVAL_SECONDS = 3600.0


class Upkeep:
    """The snapshot schedule, compaction and GC of one replica."""

    def __init__(
        self,
        *,
        engine: EngineView,
        health: ReplicaHealth,
        snapshot_interval: float,
        retention: float,
        gc_grace: float,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.health = health
        self.snapshot_interval = snapshot_interval
        self.retention = retention
        self.gc_grace = gc_grace
        self.clock = clock
        self.last_gc = clock()
        self._compaction: asyncio.Task | None = None

    def seconds_to_next(self, position: ReplicaPosition) -> float:
        """Until the next snapshot or GC is due (at least 50 ms)."""
        now = self.clock()
        due = [self.last_gc + GC_INTERVAL_SECONDS - now]
        if self.snapshot_interval > 0:
            due.append(position.snapshot_time_us / 1e6 + self.snapshot_interval - now)
        return max(0.05, min(due))

    def snapshot_due(self, position: ReplicaPosition, now: float) -> bool:
        """``snapshot-interval`` has passed since the last snapshot, and the
        database has transactions the snapshot does not hold."""
        return (
            self.snapshot_interval > 0
            and now - position.snapshot_time_us / 1e6 >= self.snapshot_interval
            and self.engine.txid > position.snapshot_txid
        )

    async def run(
        self, position: ReplicaPosition, publish_snapshot: Callable[[], Awaitable[None]]
    ) -> None:
        health = self.health
        now = self.clock()
        if self.snapshot_due(position, now):
            await publish_snapshot()
        if self._compaction is not None and self._compaction.done():
            self._compaction = None
        if position.records_since_compaction >= COMPACT_EVERY_RECORDS and self._compaction is None:
            # In the background: compaction reads the records since the last
            # compacted one (and that one), and syncs (at a sync interval of 0s,
            # many a second) must not wait for that. It writes only compacted
            # records, under keys of their own.
            position.records_since_compaction = 0
            self._compaction = asyncio.create_task(self._compact(position.generation))
        if now - self.last_gc >= GC_INTERVAL_SECONDS:
            self.last_gc = now
            report = await health.replica.collect_garbage(
                retention_seconds=self.retention,
                grace_seconds=self.gc_grace,
                now_us=int(now * 1e6),
            )
            health.log("info", "gc", replica=health.name, report=str(report))

    async def stop(self) -> None:
        """Cancel a compaction in flight: not needed for a restore; the next run
        compacts again."""
        if self._compaction is not None:
            self._compaction.cancel()
            await asyncio.gather(self._compaction, return_exceptions=True)
            self._compaction = None

    async def _compact(self, generation: str) -> None:
        health = self.health
        try:
            await health.replica.compact(generation)
        except (LitetoolError, OSError) as exc:
            health.log("warning", "compaction failed", replica=health.name, error=str(exc))
        except Exception as exc:  # a bug: loudly; the next compaction tries again
            report_failure(
                health.board, health.log, health.db_path, "compaction", exc, replica=health.name
            )
