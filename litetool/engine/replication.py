"""Replication of one database: the capture thread plus one sync task per replica.

``DatabaseReplication.run`` is the whole life cycle:

1. open the spool (recovering it), the read fence and the capture; resume
   the generation when the WAL continues the spooled position, otherwise
   start a new one and log why (``litetool.engine.capture.capture_side``);
2. run the capture loop in a thread (``litetool.engine.capture_thread``):
   wait for a WAL change (inotify), capture, signal the replica tasks, apply
   the checkpoint policy (``litetool.engine.capture.checkpoint``), serve snapshot
   requests (``litetool.engine.snapshot_serving``), watch the spool cap
   (``litetool.engine.spool_cap``);
3. run each replica's ``ReplicaSync`` on asyncio;
4. on stop: one last capture, a final sync of every replica, close (litetool's
   connections close without checkpointing, so the WAL stays as it was).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.capture.checkpoint import CheckpointPolicy
from litetool.engine.capture.snapshot import SnapshotSource
from litetool.engine.capture_thread import CaptureThread
from litetool.engine.runtime.status import (
    DatabaseState,
    EventKind,
    ReplicaState,
    StatusBoard,
    publish_and_log,
)
from litetool.engine.runtime.supervisor import Watchdog, supervised
from litetool.engine.snapshot_serving import SnapshotServing
from litetool.engine.spool.spool import Spool
from litetool.engine.spool_cap import SpoolCap
from litetool.engine.sync.replica_sync import ReplicaSync
from litetool.errors import LitetoolError, ReplicaConflict
from litetool.storage import Replica

# How often the watchdog looks for replicas that stall without an error.
WATCHDOG_SECONDS = 1.0


class DatabaseReplication:
    """Everything litetool does for one database."""

    def __init__(
        self,
        config,  # litetool.config.model.DatabaseConfig
        board: StatusBoard,
        *,
        log: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.db_path = Path(config.path)
        self.board = board
        self.clock = clock
        self._log = log
        # Set when replication stops: committed transactions on no replica.
        self.unreplicated = 0
        # Another litetool owns a replica, or a replica's first answer proved it
        # unusable: replication stops with this error.
        self._fatal: LitetoolError | None = None
        self._fatal_event = asyncio.Event()
        self.replicas: list[ReplicaSync] = []
        self.side = CaptureSide(config, board, self.replicas, log=self.log, clock=clock)
        self.snapshots = SnapshotServing(self.side)
        self.capture_thread = CaptureThread(
            self.side,
            self.snapshots,
            SpoolCap(self.side, self.snapshots),
            CheckpointPolicy(
                soft_pages=config.checkpoint_soft_pages,
                hard_pages=config.checkpoint_hard_pages,
                interval=config.checkpoint_interval,
                board=board,
                db_path=self.db_path,
                log=self.log,
                clock=clock,
            ),
        )

    def log(self, level: str, event: str, **fields) -> None:
        self._log(level, event, db=str(self.db_path), **fields)

    # -- EngineView for the replica tasks --------------------------------------------------

    @property
    def generation(self) -> str:
        return self.side.generation

    @property
    def generation_reason(self) -> str:
        return self.side.generation_reason

    @property
    def txid(self) -> int:
        return self.side.capture.txid

    @property
    def last_time_us(self) -> int:
        return self.side.capture.last_time_us

    @property
    def spool(self) -> Spool:
        return self.side.spool

    @property
    def writer_id(self) -> str:
        return self.side.writer_id

    @property
    def backpressure(self) -> bool:
        """The application is braked for a slow replica (``litetool.engine.capture.brake``)."""
        return self.side.brake.backpressure

    async def take_snapshot(self) -> SnapshotSource:
        """A snapshot at the current txid; the spool keeps the transactions after
        it until :meth:`release_snapshot` (``SnapshotServing.take``)."""
        return await self.snapshots.take()

    def release_snapshot(self, source: SnapshotSource) -> None:
        self.snapshots.release(source)

    def fenced(self, replica: str, exc: ReplicaConflict) -> None:
        """A replica belongs to another litetool: stop, and fail with ``exc``."""
        if self._fatal is None:
            self._fatal = exc
            self.log(
                "error",
                "another litetool owns the replica",
                replica=replica,
                error=exc.message,
                action="stopping; this process exits non-zero",
            )
            self._fatal_event.set()

    def unusable(self, replica: str, exc: LitetoolError) -> bool:
        """A replica's first answer proved it unusable (credentials, permissions, no
        bucket, configuration). When no replica of the database can work (none
        has worked yet, and each got such an answer), retrying heals nothing:
        stop, and fail with ``exc`` (True). Otherwise the replicas that work go
        on, and this one is retried and reported (False)."""
        if any(sync.progress.unusable_error is None for sync in self.replicas):
            return False
        if self._fatal is None:
            self._fatal = exc
            self.log(
                "error",
                "replica unusable",
                replica=replica,
                error=exc.message,
                action="stopping; this process exits non-zero",
            )
            self._fatal_event.set()
        return True

    # -- life cycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.side.loop = asyncio.get_running_loop()
        self.board.update_database(str(self.db_path), state=DatabaseState.STARTING)
        # Every replica URL is checked (a typo, an unknown scheme), and every
        # store configured (S3 without any credentials, say), before the
        # database is touched or any generation starts. No request yet: a store
        # that is down at start must not hold up capture.
        opened = []
        for index, replica_config in enumerate(self.config.replicas):
            name = replica_config.display_name(index)
            replica = Replica.open(replica_config.url, replica_config.store_options(), name)
            replica.configure()
            opened.append((replica_config, name, replica))
            # /status lists every configured replica from the first moment
            # it answers, not only once the database is open.
            self.board.update_replica(
                str(self.db_path), name, url=replica.display_url, state=ReplicaState.STARTING
            )
        await asyncio.to_thread(self.side.open)
        for replica_config, name, replica in opened:
            self.log("info", "replica", replica=name, url=replica.display_url, **replica.facts)
            self.replicas.append(
                ReplicaSync(
                    name=name,
                    replica=replica,
                    engine=self,
                    board=self.board,
                    db_path=str(self.db_path),
                    sync_interval=replica_config.sync_interval,
                    snapshot_interval=self.config.snapshot_interval,
                    retention=replica_config.retention,
                    gc_grace=replica_config.gc_grace,
                    log=lambda level, event, **f: self.log(level, event, **f),
                    clock=self.clock,
                )
            )
        capture_thread = threading.Thread(
            target=self.capture_thread.run, name=f"capture:{self.db_path.name}", daemon=True
        )
        capture_thread.start()
        replica_stop = asyncio.Event()
        db = str(self.db_path)

        def supervise(task: str, body, replica: str | None = None) -> asyncio.Task:
            return asyncio.create_task(
                supervised(
                    task,
                    body,
                    stop=replica_stop,
                    board=self.board,
                    log=self.log,
                    db_path=db,
                    replica=replica,
                )
            )

        tasks = [
            supervise(f"replica {r.name}", functools.partial(r.run, replica_stop), r.name)
            for r in self.replicas
        ]
        if self.config.validation_interval > 0:
            tasks.append(supervise("validation", lambda: self._validation_loop(replica_stop)))
        watchdog = supervise("watchdog", lambda: self._watchdog_loop(replica_stop))
        try:
            stopped = asyncio.create_task(stop.wait())
            fatal = asyncio.create_task(self._fatal_event.wait())
            await asyncio.wait([stopped, fatal], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            fatal.cancel()
        finally:
            # Final capture first, then the replicas' final syncs.
            self.capture_thread.stop()
            await asyncio.to_thread(capture_thread.join)
            replica_stop.set()
            await asyncio.gather(*tasks, watchdog, return_exceptions=True)
            await asyncio.to_thread(self.side.close)
            self.unreplicated = self._count_unreplicated()
            self.board.update_database(
                db, state=DatabaseState.STOPPED, unreplicated=self.unreplicated
            )
            self.log("info", "stopped", txid=self.side.capture.txid)
            if self.unreplicated and self._fatal is None:
                self.log(
                    "error",
                    "stopped with unreplicated transactions",
                    count=self.unreplicated,
                    generation=self.generation,
                    txid=self.side.capture.txid,
                    hint="they are in the database and the local spool; the next start "
                    "replicates them",
                )
        if self._fatal is not None:
            raise self._fatal

    def _count_unreplicated(self) -> int:
        """Committed transactions of the current generation on no replica (when
        no replica has even its snapshot: every transaction, and at least 1)."""
        best = -1
        for sync in self.replicas:
            progress = sync.progress
            if progress.has_place and progress.engine_generation == self.generation:
                best = max(best, progress.txid)
        if best < 0:
            return max(1, self.side.capture.txid)
        return max(0, self.side.capture.txid - best)

    async def _watchdog_loop(self, stop: asyncio.Event) -> None:
        """Every second, ``Watchdog.check`` (replication that stalls silently)."""
        watchdog = Watchdog(self.board, self.log, str(self.db_path))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=WATCHDOG_SECONDS)
                return
            except TimeoutError:
                pass
            watchdog.check(
                self.side.capture.txid,
                self.generation,
                [
                    (r.name, p.txid, p.engine_generation, r.sync_interval, p.active_at)
                    for r, p in ((r, r.progress) for r in self.replicas)
                ],
            )

    async def validate(self) -> list:
        """Validate every replica against the live database (see ``validation``)."""
        from litetool.engine.validation import validate_replica

        results = []
        for sync in self.replicas:
            result = await validate_replica(self, sync)
            results.append(result)
            publish_and_log(
                self.board,
                self.log,
                "info" if result.ok else "error",
                "validation",
                str(self.db_path),
                f"validation of {sync.name}: {result.message}",
                kind=EventKind.VALIDATION if result.ok else EventKind.ERROR,
                replica=sync.name,
                ok=result.ok,
                txid=result.txid,
                message=result.message,
            )
        return results

    async def _validation_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.config.validation_interval)
                return
            except TimeoutError:
                pass
            try:
                await self.validate()
            except (LitetoolError, OSError) as exc:
                self.log("error", "validation failed", error=str(exc))
