"""Replication of one database: the capture thread plus one sync task per replica.

``DatabaseReplication.run`` is the whole life cycle:

1. open the spool (recovering it), the read fence and the capture; resume
   the generation when the WAL continues the spooled position, otherwise
   start a new one and log why;
2. run the capture loop in a thread: wait for a WAL change (inotify), capture,
   signal the replica tasks, apply the checkpoint policy, serve snapshot
   requests, watch the spool cap;
3. run each replica's ``ReplicaSync`` on asyncio;
4. on stop: one last capture, a final sync of every replica, close (litetool's
   connections close without checkpointing, so the WAL stays as it was).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import os
import queue
import secrets
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from litetool.crashpoints import crash_point
from litetool.engine.brake import BACKPRESSURE_ON_SHARE, Brake
from litetool.engine.capture import Capture, ContinuityLost
from litetool.engine.continuity import read_seal, remove_seal
from litetool.engine.digest_keeper import DigestKeeper
from litetool.engine.fence import ReadFence, WriteLockBusy
from litetool.engine.page_digests import PageDigests
from litetool.engine.replica_sync import ReplicaSync
from litetool.engine.snapshot import SnapshotSource
from litetool.engine.spool import Spool
from litetool.engine.status import StatusBoard
from litetool.engine.supervisor import Watchdog, report_failure, supervised
from litetool.engine.wakeup import WalWakeup
from litetool.errors import DatabaseError, LitetoolError, ReplicaConflict
from litetool.storage import Replica, new_generation_id
from litetool.wal.header import FRAME_HEADER_SIZE
from litetool.wording import plural

# The capture loop also wakes this often without a WAL change, for the
# checkpoint interval, snapshot requests and shutdown.
IDLE_WAKE_SECONDS = 0.5
# Soft checkpoints (WAL restarts) at most this often while the application
# writes: each holds writers for a few fsyncs (see ``Capture.checkpoint_step``;
# the backfill itself goes on in the background), so a full-speed writer
# meets about one a second; the hard threshold still applies at once.
MIN_CHECKPOINT_SPACING_SECONDS = 1.0
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
# A snapshot tries SQLite's write lock this long each time round the capture
# loop, warns after waiting SNAPSHOT_LOCK_WARN_SECONDS and gives up (the
# replica retries with backoff) after SNAPSHOT_LOCK_PATIENCE_SECONDS.
SNAPSHOT_LOCK_TRY_SECONDS = 0.05
SNAPSHOT_LOCK_WARN_SECONDS = 5.0
SNAPSHOT_LOCK_PATIENCE_SECONDS = 60.0
# Proofs of continuity before a new generation starts instead, when the WAL
# keeps changing or the write lock stays taken (each waits up to 5 s for it).
RESUME_ATTEMPTS = 8
# How often the capture loop checks that the database's path still names the
# file it has open (see ``_file_replaced``).
IDENTITY_CHECK_SECONDS = 0.5
# How often the watchdog looks for replicas that stall without an error.
WATCHDOG_SECONDS = 1.0
# The status board, events and spool cap are refreshed at most this often.
STATUS_INTERVAL_SECONDS = 0.25


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
        self.spool = Spool(config.resolved_spool_dir(), max_bytes=config.spool_max_bytes)
        self.fence = ReadFence(self.db_path)
        self.capture = Capture(self.db_path, self.spool, self.fence, clock=clock)
        self.brake = Brake(self.fence)
        self.generation = ""
        self.generation_reason = ""
        # Set when replication stops: committed transactions on no replica.
        self.unreplicated = 0
        # Another litetool owns a replica, or a replica's first answer proved it
        # unusable: replication stops with this error.
        self._fatal: LitetoolError | None = None
        self._fatal_event = asyncio.Event()
        self._next_make_way = 0.0
        self._made_way = 0
        # The spool's state of the current generation (what a reopen resumes).
        self._state: dict | None = None
        # (device, inode) of the database file litetool has open.
        self._db_identity: tuple[int, int] = (0, 0)
        self._identity_checked = 0.0
        self._reopen_pending = False
        self._missing_warned = False
        self.writer_id = ""
        self.replicas: list[ReplicaSync] = []
        self._snapshot_requests: queue.Queue[concurrent.futures.Future] = queue.Queue()
        # Requests waiting for SQLite's write lock: (future, since when).
        self._waiting_snapshots: list[tuple[concurrent.futures.Future, float]] = []
        self._snapshot_lock_warned = False
        # txids of snapshots taken and not yet published: the spool keeps what
        # follows each, so their replica can go on from there (while under the cap).
        self._snapshot_pins: list[int] = []
        self._pins_lock = threading.Lock()  # also guards _capture_stopped
        self._capture_stopped = False
        self._stop_capture = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: WalWakeup | None = None
        self._lock_fd = -1
        self._last_checkpoint = clock()
        self._checkpoints: dict[str, int] = {}
        self._last_trim = 0.0
        self._truncate = False  # the checkpoint in progress ends with TRUNCATE
        # Captured txids not yet announced on the board: (first, last, time).
        self._unannounced: tuple[int, int, int] | None = None
        # The last txid announced (or known at open): captures made outside
        # ``capture_once`` (under a snapshot's or a checkpoint's lock) are
        # announced from it by ``_refresh_status``.
        self._announced_txid = 0
        self._last_status = 0.0
        # What the next start proves continuity with (``digest_keeper``).
        self.keeper = DigestKeeper(self.spool, self.db_path, self.log)

    @property
    def backpressure(self) -> bool:
        """The application is braked for a slow replica (``litetool.engine.brake``)."""
        return self.brake.backpressure

    def log(self, level: str, event: str, **fields) -> None:
        self._log(level, event, db=str(self.db_path), **fields)

    # -- EngineView for the replica tasks --------------------------------------------------

    @property
    def txid(self) -> int:
        return self.capture.txid

    @property
    def last_time_us(self) -> int:
        return self.capture.last_time_us

    async def take_snapshot(self) -> SnapshotSource:
        """A snapshot at the current txid. The spool keeps the transactions after it
        until :meth:`release_snapshot` (call it once the snapshot is published, or
        given up), unless the spool reaches its cap first."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._pins_lock:
            served_here = self._capture_stopped
            if not served_here:
                self._snapshot_requests.put(future)
        if served_here:  # the capture thread is gone (a final sync): open it here
            return await asyncio.to_thread(self._open_snapshot)
        if self._wakeup is not None:
            self._wakeup.interrupt()
        return await asyncio.wrap_future(future)

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
        if any(sync.unusable_error is None for sync in self.replicas):
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

    def release_snapshot(self, source: SnapshotSource) -> None:
        with self._pins_lock, contextlib.suppress(ValueError):
            self._snapshot_pins.remove(source.txid)

    # -- life cycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.board.update_database(str(self.db_path), state="starting")
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
                str(self.db_path), name, url=replica.display_url, state="starting"
            )
        await asyncio.to_thread(self._open)
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
            target=self._capture_loop, name=f"capture:{self.db_path.name}", daemon=True
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
            self._stop_capture.set()
            if self._wakeup is not None:
                self._wakeup.interrupt()
            await asyncio.to_thread(capture_thread.join)
            replica_stop.set()
            await asyncio.gather(*tasks, watchdog, return_exceptions=True)
            await asyncio.to_thread(self._close)
            self.unreplicated = self._count_unreplicated()
            self.board.update_database(db, state="stopped", unreplicated=self.unreplicated)
            self.log("info", "stopped", txid=self.capture.txid)
            if self.unreplicated and self._fatal is None:
                self.log(
                    "error",
                    "stopped with unreplicated transactions",
                    count=self.unreplicated,
                    generation=self.generation,
                    txid=self.capture.txid,
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
            position = sync.position
            if (
                position is not None
                and position.engine_generation == self.generation
                and not sync.needs_snapshot
                and not sync.detached
            ):
                best = max(best, position.txid)
        if best < 0:
            return max(1, self.capture.txid)
        return max(0, self.capture.txid - best)

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
                self.capture.txid,
                self.generation,
                [
                    (
                        r.name,
                        r.position.txid if r.position is not None else -1,
                        r.position.engine_generation if r.position is not None else None,
                        r.sync_interval,
                        r.active_at,
                    )
                    for r in self.replicas
                ],
            )

    async def validate(self) -> list:
        """Validate every replica against the live database (see ``validation``)."""
        from litetool.engine.validation import validate_replica

        results = []
        for sync in self.replicas:
            result = await validate_replica(self, sync)
            results.append(result)
            self.board.publish(
                "validation" if result.ok else "error",
                str(self.db_path),
                f"validation of {sync.name}: {result.message}",
                replica=sync.name,
            )
            self.log(
                "info" if result.ok else "error",
                "validation",
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

    def _open(self) -> None:
        self._check_database()
        spool_dir = self.spool.directory
        created = not spool_dir.exists()
        try:
            self._open_spool_and_database()
        except BaseException:
            # A start that fails leaves nothing behind that it made.
            self._close()
            if created:
                shutil.rmtree(spool_dir, ignore_errors=True)
            raise

    def _check_database(self) -> None:
        """Refuse a path that is not a SQLite database before creating anything."""
        path = self.db_path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DatabaseError(
                f"database not found: {path}", hint="create it first, or check the path"
            ) from None
        except OSError as exc:
            raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise DatabaseError(f"{path} is not a file")
        try:
            with open(path, "rb") as handle:
                head = handle.read(16)
        except OSError as exc:
            raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
        if head and head != b"SQLite format 3\x00":
            raise DatabaseError(f"{path} is not a SQLite database (its first bytes say otherwise)")

    def _open_spool_and_database(self) -> None:
        spool_dir = self.spool.directory
        try:
            spool_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(spool_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseError(
                f"{self.db_path} is already being replicated by another litetool "
                f"(spool {spool_dir} is locked)"
            ) from None
        except OSError as exc:
            raise DatabaseError(f"cannot use spool {spool_dir}: {exc.strerror}") from None
        self.writer_id = self._writer_id(spool_dir)
        # Import the capture path's modules now, not on the first commit,
        # whose commit time would carry the import time.
        import litetool.wal.checksum_fast
        import litetool.wal.reader  # noqa: F401

        state = self.spool.open()
        self.fence.open()
        self._db_identity = self._identity_of_open_file()
        if self.fence.switched_to_wal:
            self.log("warning", "switched to WAL mode", hint="litetool needs journal_mode=WAL")
        reason = "first run" if state is None else self._resume(state)
        if reason:
            self._new_generation(reason)
        else:
            self._state = state
        self._wakeup = WalWakeup(self.capture.wal_path)
        self._announced_txid = self.capture.txid
        self._publish_status()

    def _identity_of_open_file(self) -> tuple[int, int]:
        st = os.fstat(self.fence.raw_fd("db"))
        return st.st_dev, st.st_ino

    def _file_replaced(self) -> bool:
        """Whether the database's path now names another file than the one
        litetool has open (checked every IDENTITY_CHECK_SECONDS): a restore in
        place, a copy moved over it. Replicating the old file would go on
        silently while the application writes the new one."""
        now = time.monotonic()
        if now - self._identity_checked < IDENTITY_CHECK_SECONDS:
            return False
        self._identity_checked = now
        try:
            st = os.stat(self.db_path)
        except FileNotFoundError:
            if not self._missing_warned:
                self._missing_warned = True
                self.log(
                    "warning",
                    "database file missing",
                    path=str(self.db_path),
                    action="replication goes on when a database is there again",
                )
            return False
        self._missing_warned = False
        return (st.st_dev, st.st_ino) != self._db_identity

    def _reopen(self) -> None:
        """Follow a database file that was replaced: let go of the old one and
        prove continuity against the new one like a restart does (a restore in
        place of the latest point resumes; anything else starts a new
        generation, and the reason says the file was replaced)."""
        if not self._reopen_pending:
            self._reopen_pending = True
            self.log(
                "warning",
                "database file replaced",
                path=str(self.db_path),
                action="proving continuity against the new file",
            )
            self.keeper.stop()
            self.capture.close()
            if self._wakeup is not None:
                self._wakeup.close()
            self.fence.close()
        self.fence = ReadFence(self.db_path)
        self.capture = Capture(self.db_path, self.spool, self.fence, clock=self.clock)
        self.brake = Brake(self.fence)
        try:
            self.fence.open()
        except DatabaseError as exc:
            self.fence.close()
            self.log("warning", "cannot open the new database file", error=exc.message)
            return  # tried again after IDENTITY_CHECK_SECONDS
        self._reopen_pending = False
        self._db_identity = self._identity_of_open_file()
        digests = self.keeper.digests
        reason = self._resume(self._state, digests=digests) if self._state else "no spool"
        if reason:
            detail = reason.replace(" while litetool was not running", "")
            self._new_generation(
                f"the database file was replaced while litetool was running: {detail}"
            )
        self._wakeup = WalWakeup(self.capture.wal_path)
        self._notify_replicas()
        self._publish_status()

    def _resume(self, state: dict, digests: PageDigests | None = None) -> str:
        """Prove that the live database continues the spooled position and
        resume there; '' when resumed, else why a new generation must start.
        ``digests``: those in memory (after the database file was replaced);
        else the saved ones, and the seal a clean stop left."""
        self.capture.restore_state(state, self.spool.last)
        directory = self.spool.directory
        if digests is None:
            seal = read_seal(directory)
            # A seal describes the file as a clean stop left it; from now on
            # litetool's own checkpoints write the file, so it must go first.
            remove_seal(directory)
            digests, missing = PageDigests.open(directory)
        else:
            seal, missing = None, ""
        self.keeper.digests = digests
        verdict = None
        for _attempt in range(RESUME_ATTEMPTS):
            verdict = self.capture.prove_continuity(seal, digests, missing)
            if not verdict.resume:
                return verdict.reason
            try:
                self.capture.resume(verdict)
            except ContinuityLost:
                seal = None  # the WAL moved on while proving: prove again
                continue
            except WriteLockBusy:
                # An application checkpoint may wait for our reader while it
                # holds the write lock: it gives up after its busy timeout.
                self.log("warning", "waiting for the write lock to resume")
                continue
            except DatabaseError as exc:
                return f"cannot resume: {exc}"
            break
        else:
            return "the WAL kept changing (or stayed locked) while continuity was being proven"
        assert verdict is not None
        self.generation = state["generation"]
        self.generation_reason = state.get("reason", "")
        self.log(
            "info",
            "resumed",
            generation=self.generation,
            txid=self.capture.txid,
            proof=verdict.method,
            why=verdict.reason,
            new_transactions=verdict.wal.new_transactions,
        )
        return ""

    def _new_generation(self, reason: str) -> None:
        generation = new_generation_id()
        unpublished = self._unpublished_count()
        state = self.capture.base_state(generation, reason)
        self.spool.start_generation(state)
        self._state = state
        self.keeper.drop()
        self.generation = generation
        self.generation_reason = reason
        self._unannounced = None
        self._announced_txid = self.capture.txid
        self.board.publish(
            "generation", str(self.db_path), f"new generation {generation}: {reason}"
        )
        self.log(
            "warning" if reason != "first run" else "info",
            "new generation",
            generation=generation,
            reason=reason,
        )
        if unpublished:
            self.log(
                "error",
                "unpublished transactions superseded",
                count=unpublished,
                hint="they are in the new generation's snapshot, but not as separate "
                "restore points",
            )
        self._notify_replicas()

    def _unpublished_count(self) -> int:
        published = [r.position.txid for r in self.replicas if r.position is not None]
        if not published or not self.generation:
            return 0
        return max(0, self.capture.txid - min(published))

    def _close(self) -> None:
        self.capture.close()  # first: a backfill in flight still wakes the loop
        self.keeper.close()  # the digests stay on disk for the next start
        if self._wakeup is not None:
            self._wakeup.close()
        self.fence.close()
        self.spool.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @staticmethod
    def _writer_id(spool_dir: Path) -> str:
        # Stable per spool, so a restarted litetool can retake its own lease.
        path = spool_dir / "writer-id"
        try:
            token = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            token = secrets.token_hex(4)
            path.write_text(token + "\n", encoding="ascii")
        return f"{socket.gethostname()[:200]}:{token}"

    # -- the capture thread ----------------------------------------------------------------

    def _capture_loop(self) -> None:
        """Capture on every WAL change; while commits keep coming, poll instead.

        Idle, the loop sleeps on inotify. Once a capture finds commits, the
        watch is dropped (it costs the application an event per write) and the
        loop polls every CAPTURE_SPACING_SECONDS until a capture finds
        nothing; then it watches again, captures once more (a commit may have
        landed in between) and only then sleeps.
        """
        last_capture = 0.0
        busy = False
        while True:
            wakeup = self._wakeup  # a new one after the database file was replaced
            assert wakeup is not None
            stopping = self._stop_capture.is_set()
            batch = None
            app_checkpoint = False
            try:
                if self._reopen_pending or self._file_replaced():
                    busy = False
                    self._reopen()
                    if not self._reopen_pending:
                        continue
                    if stopping:  # no file to capture from, nothing to seal
                        self._leave_capture()
                        return
                    # The new file cannot be opened yet: nothing to capture.
                    self._stop_capture.wait(IDENTITY_CHECK_SECONDS)
                    continue
                self._serve_snapshot_requests()
                if busy and not stopping:
                    self._watch_commits(last_capture + CAPTURE_SPACING_SECONDS)
                last_capture = time.monotonic()
                batch = self.capture.capture_once()
                if batch is not None:
                    self._captured(batch)
                self.capture.backfill_step(on_backfilled=wakeup.interrupt)
                self._maybe_checkpoint()
                self.keeper.maintain(self.capture, self.generation, self._notify_replicas)
                if self.brake.due(checkpoint_behind=self.capture.braking):
                    self.brake.pulse()
                self._refresh_status(force=batch is None or stopping)
                app_checkpoint = batch is None and self._make_way_for_application()
            except ContinuityLost as exc:
                self._new_generation(exc.reason)
            except (LitetoolError, OSError) as exc:
                self._capture_failed(exc)
                if self._stop_capture.wait(1.0):
                    stopping = True
            except Exception as exc:  # never let the capture thread die silently
                report_failure(self.board, self.log, str(self.db_path), "capture", exc)
                self._capture_failed(DatabaseError(f"unexpected {type(exc).__name__}: {exc}"))
                if self._stop_capture.wait(1.0):
                    stopping = True
            if stopping:
                self.keeper.seal_at_stop(self.capture, self.generation)
                self._leave_capture()
                return
            moving = self.capture.writer_active()  # a transaction may be in flight
            if batch is not None or moving or self.capture.checkpoint_in_progress:
                if not busy:
                    wakeup.pause()
                    busy = True
                # While commits keep coming, the application's own checkpoint
                # attempts are turned away (each would cost it a commit's time;
                # see ``ReadFence.hold_checkpoints``). Asked each time: a wish
                # made during one of litetool's checkpoints may not take.
                self.fence.hold_checkpoints(True)
                continue  # poll: the next capture comes after the spacing
            self.fence.hold_checkpoints(False)
            if busy:
                wakeup.resume()
                busy = False
                continue  # one more capture now that the watch is back
            wakeup.wait(
                MAKE_WAY_SECONDS if app_checkpoint or self._waiting_snapshots else IDLE_WAKE_SECONDS
            )
            wakeup.clear_interrupt()

    def _leave_capture(self) -> None:
        """The capture thread ends: later snapshot requests open their own."""
        with self._pins_lock:
            self._capture_stopped = True
        self._serve_snapshot_requests(last=True)

    def _make_way_for_application(self) -> bool:
        """If the application checkpoints (and may wait for litetool's reader),
        move the fence out of its way (``Capture.make_way``); True while it does."""
        if not self.fence.others_checkpoint():
            return False
        now = time.monotonic()
        if now >= self._next_make_way and self.capture.make_way():
            self._next_make_way = now + MAKE_WAY_SECONDS
            self._made_way += 1
            self.log("debug", "made way for a checkpoint of the application", times=self._made_way)
        return True

    def _watch_commits(self, until: float) -> None:
        """Until ``until`` (monotonic), note when each commit becomes visible,
        every COMMIT_OBSERVE_SECONDS (``Capture.observe_commits``): the next
        capture stamps transactions with those times."""
        capture = self.capture
        while True:
            capture.observe_commits()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(COMMIT_OBSERVE_SECONDS, left))

    def _captured(self, batch) -> None:
        pending = self._unannounced
        first = pending[0] if pending else batch.first_txid
        self._unannounced = (first, batch.last_txid, batch.time_us)
        if self.spool.size_bytes >= self.spool.max_bytes * BACKPRESSURE_ON_SHARE:
            # At once: the cap is a promise, and backpressure must begin
            # before it (a burst fills the spool between two status refreshes).
            self._check_spool_cap()
        self._notify_replicas()

    def _announce_side_captures(self) -> None:
        """Transactions captured while a snapshot or a checkpoint held the write
        lock (``Capture._capture_tail``) come to no ``_captured``: without this,
        status showed the txid before them (below what a replica published from
        the snapshot) until the next commit, and no replica was woken for them."""
        txid = self.capture.txid
        known = self._unannounced[1] if self._unannounced else self._announced_txid
        if txid > known:
            first = self._unannounced[0] if self._unannounced else known + 1
            self._unannounced = (first, txid, self.capture.last_time_us)
            self._notify_replicas()
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
                self._check_spool_cap()
            return
        if not force and now - self._last_status < STATUS_INTERVAL_SECONDS:
            return
        first, last, time_us = self._unannounced
        self._unannounced = None
        self._announced_txid = last
        self._last_status = now
        self.board.publish(
            "captured",
            str(self.db_path),
            f"txids {first}..{last}",
            first_txid=first,
            last_txid=last,
            time_us=time_us,
        )
        self._check_spool_cap()
        self._publish_status()

    def _notify_replicas(self) -> None:
        if self._loop is None:
            return
        for replica in self.replicas:
            replica.notify(self._loop)

    def _maybe_checkpoint(self) -> None:
        frames = self.capture.wal_frames()
        hard = frames >= self.config.checkpoint_hard_pages
        if not self.capture.checkpoint_in_progress:
            if frames == 0:
                return
            now = self.clock()
            soft = frames >= self.config.checkpoint_soft_pages
            interval = now - self._last_checkpoint >= self.config.checkpoint_interval
            if not (hard or soft or interval):
                return
            if now - self._last_checkpoint < MIN_CHECKPOINT_SPACING_SECONDS and not hard:
                return
            self._last_checkpoint = now
            # TRUNCATE only a WAL file larger than the hard threshold that the
            # application no longer fills (a burst or a long reader left it):
            # truncating holds writers, and a busy application writes faster
            # into a file whose blocks are already there.
            hard_bytes = self.config.checkpoint_hard_pages * (
                FRAME_HEADER_SIZE + self.capture.page_size
            )
            quiet = frames < self.config.checkpoint_soft_pages
            self._truncate = quiet and self._wal_file_bytes() > hard_bytes
        assert self._wakeup is not None
        result = self.capture.checkpoint_step(
            truncate=self._truncate, on_backfilled=self._wakeup.interrupt
        )
        if result is None:
            return
        if result.complete:
            crash_point("checkpoint-done")
        self._checkpoints[result.mode] = self._checkpoints.get(result.mode, 0) + 1
        status = self.board.update_database(
            str(self.db_path),
            checkpoints=dict(self._checkpoints),
        )
        self.board.update_database(
            str(self.db_path),
            checkpoint_seconds_total=status.checkpoint_seconds_total + result.seconds,
            writers_held_seconds_total=status.writers_held_seconds_total + result.locked_seconds,
        )
        self.board.publish(
            "checkpoint",
            str(self.db_path),
            f"{result.mode} checkpoint of {plural(result.wal_frames, 'frame')}"
            + (" (busy)" if result.busy else ""),
            mode=result.mode,
            frames=result.wal_frames,
            seconds=round(result.seconds, 4),
        )
        self.log(
            "debug",
            "checkpoint",
            mode=result.mode,
            frames=result.wal_frames,
            checkpointed=result.checkpointed_frames,
            busy=result.busy,
            seconds=round(result.seconds, 4),
            locked_seconds=round(result.locked_seconds, 4),
            braked_seconds_total=round(self.brake.braked_seconds, 3),
        )
        self._notify_replicas()

    def _wal_file_bytes(self) -> int:
        try:
            return os.path.getsize(self.capture.wal_path)
        except OSError:
            return 0

    def _serve_snapshot_requests(self, *, last: bool = False) -> None:
        """Open the snapshots replicas asked for.

        SQLite's write lock is tried for SNAPSHOT_LOCK_TRY_SECONDS each time
        round, so capture goes on while the application holds it (an
        application checkpoint waiting for litetool's reader holds it: the
        loop makes way for it meanwhile). A request that cannot have the lock
        for SNAPSHOT_LOCK_PATIENCE_SECONDS fails; its replica reports that and
        asks again after a backoff. ``last``: the capture thread is leaving,
        every request is answered now.
        """
        if self._snapshot_requests.empty() and not self._waiting_snapshots:
            return  # the common case, without raising queue.Empty
        while True:
            try:
                future = self._snapshot_requests.get_nowait()
            except queue.Empty:
                break
            self._waiting_snapshots.append((future, time.monotonic()))
        waiting, self._waiting_snapshots = self._waiting_snapshots, []
        for index, (future, since) in enumerate(waiting):
            try:
                source = self._open_snapshot(
                    lock_timeout=None if last else SNAPSHOT_LOCK_TRY_SECONDS
                )
            except WriteLockBusy as exc:
                waited = time.monotonic() - since
                if last or waited >= SNAPSHOT_LOCK_PATIENCE_SECONDS:
                    future.set_exception(
                        WriteLockBusy(f"{exc.message} (a snapshot waited {waited:.0f}s)")
                    )
                    continue
                if not self._snapshot_lock_warned and waited >= SNAPSHOT_LOCK_WARN_SECONDS:
                    self._snapshot_lock_warned = True
                    self.log(
                        "warning",
                        "snapshot waits for the write lock",
                        seconds=round(waited, 1),
                        hint="the application holds SQLite's write lock",
                    )
                self._waiting_snapshots = waiting[index:]  # in order: try again next time
                return
            except LitetoolError as exc:
                future.set_exception(exc)
            else:
                self._snapshot_lock_warned = False
                future.set_result(source)
                self._notify_replicas()

    def _open_snapshot(self, *, lock_timeout: float | None = None) -> SnapshotSource:
        """Open a snapshot and pin its txid in the spool (in the capture thread, or
        in any thread once it has stopped: before any later trim can run)."""
        try:
            source = self.capture.open_snapshot(lock_timeout=lock_timeout)
        except (OSError, ContinuityLost) as exc:
            raise DatabaseError(str(exc)) from exc
        with self._pins_lock:
            self._snapshot_pins.append(source.txid)
        return source

    def _check_spool_cap(self) -> None:
        # Replicas without an established position (never reached, detached,
        # waiting for a snapshot) start from a snapshot: they hold no history.
        holders = [
            r
            for r in self.replicas
            if r.position is not None and not r.detached and not r.needs_snapshot
        ]
        # Trim first: the cap is about what some replica still needs, not
        # about what was published since the last trim (checking first once
        # detached a replica that had caught up, after a burst).
        with self._pins_lock:
            pins = list(self._snapshot_pins)
        floor = [r.position.txid for r in holders] + pins
        digests_floor = self.keeper.floor(self.generation)
        keep = floor + digests_floor
        self.spool.trim(min(keep) if keep else self.txid)
        self._update_backpressure(holders)
        if not self.spool.over_cap:
            return
        if digests_floor and (not floor or min(digests_floor) < min(floor)):
            # The page digests give way first: they are rebuilt from the live
            # database, a replica's history is not.
            self.log(
                "warning",
                "page digests dropped",
                reason="the spool reached its cap",
                action="rebuilt from the database; until then an unclean stop starts a new "
                "generation",
            )
            self.keeper.drop()
            self.spool.trim(min(floor) if floor else self.txid)
            if not self.spool.over_cap:
                return
        with self._pins_lock:
            pins = list(self._snapshot_pins)
            # The cap comes first: the snapshots in flight lose their place,
            # and their replicas start over from another one (loudly, below).
            self._snapshot_pins.clear()
        if pins:
            self.log(
                "error",
                "spool full",
                spool_bytes=self.spool.size_bytes,
                cap=self.spool.max_bytes,
                action="snapshots being uploaded lose their place in the spool; "
                "their replicas start from another snapshot",
            )
        if not holders:
            self.spool.trim(self.txid)
            return
        # Over the cap: detach the replica that holds the oldest history.
        laggard = min(holders, key=lambda r: r.position.txid)
        self.log(
            "error",
            "spool full",
            spool_bytes=self.spool.size_bytes,
            cap=self.spool.max_bytes,
            replica=laggard.name,
            action="replica detached; it restarts from a new snapshot when reachable",
        )
        self.board.publish(
            "error",
            str(self.db_path),
            f"spool full: replica {laggard.name} detached",
            replica=laggard.name,
        )
        laggard.detach()
        rest = [r.position.txid for r in holders if r is not laggard]
        self.spool.trim(min(rest) if rest else self.txid)
        self.board.update_database(str(self.db_path), spool_over_cap=self.spool.over_cap)

    def _update_backpressure(self, holders: list) -> None:
        """Brake the application while the replica furthest behind is reachable
        but slower than it, before the spool reaches its cap.

        A replica that keeps up with its syncs yet falls behind (the disk or
        the network is the limit, e.g. a full-speed burst on a saturated disk)
        would otherwise be detached at the cap and start over from a snapshot,
        which costs more of what is short. A replica that fails (an outage)
        never brakes the application: the cap and detaching are for that.
        """
        share = self.spool.size_bytes / max(1, self.spool.max_bytes)
        laggard = min(holders, key=lambda r: r.position.txid) if holders else None
        reachable = laggard is not None and laggard.reachable
        if not self.brake.update_backpressure(share, reachable):
            return
        on = self.brake.backpressure
        self.board.update_database(
            str(self.db_path), backpressure=on, braked_seconds_total=self.brake.braked_seconds
        )
        if on:
            assert laggard is not None
            message = f"replica {laggard.name} is behind: braking the application's writers"
            self.board.publish("warning", str(self.db_path), message, replica=laggard.name)
            self.log(
                "warning",
                "backpressure",
                replica=laggard.name,
                spool_bytes=self.spool.size_bytes,
                cap=self.spool.max_bytes,
                action="writers are held in short pulses until the replica catches up",
            )
        else:
            self.log(
                "info",
                "backpressure off",
                spool_bytes=self.spool.size_bytes,
                braked_seconds_total=round(self.brake.braked_seconds, 3),
            )

    def _capture_failed(self, exc: Exception) -> None:
        message = exc.render() if isinstance(exc, LitetoolError) else f"{exc}"
        status = self.board.update_database(str(self.db_path), last_error=message)
        self.board.update_database(
            str(self.db_path), capture_errors=status.capture_errors + 1, state="error"
        )
        self.board.publish("error", str(self.db_path), message)
        self.log("error", "capture failed", error=message)

    def _publish_status(self) -> None:
        wal_size = 0
        db_size = 0
        with contextlib.suppress(OSError):
            wal_size = os.path.getsize(self.capture.wal_path)
        with contextlib.suppress(OSError):
            db_size = os.path.getsize(self.db_path)
        self.board.update_database(
            str(self.db_path),
            state="replicating",
            generation=self.generation,
            generation_reason=self.generation_reason,
            txid=self.capture.txid,
            last_commit_us=self.capture.last_time_us,
            page_size=self.capture.page_size,
            db_size_bytes=db_size,
            wal_size_bytes=wal_size,
            wal_bytes_total=self.capture.wal_bytes_total,
            spool_bytes=self.spool.size_bytes,
            spool_over_cap=self.spool.over_cap,
            braked_seconds_total=self.brake.braked_seconds,
            last_error=None,
        )
