"""The capture side of one replicated database: what it holds and how it opens.

``CaptureSide`` holds the spool, the database file behind the read fence,
the capture and its checkpointer, the brake, the page digests' keeper and
the generation being captured. It opens them (refusing a path that is not a
SQLite database, locking the spool), proves that the live database continues
the spooled position and resumes there, or starts a new generation and says
why (``resume``, ``new_generation``); it follows a database file replaced
while litetool runs (``file_replaced``, ``reopen``), and closes without
checkpointing. The capture thread (``litetool.engine.capture_thread``)
drives it; the replica tasks read it through ``DatabaseReplication``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from litetool.engine.capture.brake import Brake
from litetool.engine.capture.capture import Capture, ContinuityLost
from litetool.engine.capture.checkpoint import Checkpointer
from litetool.engine.capture.digest_keeper import DigestKeeper
from litetool.engine.capture.fence import ReadFence, WriteLockBusy
from litetool.engine.capture.wakeup import WalWakeup
from litetool.engine.continuity.continuity import read_seal, remove_seal
from litetool.engine.continuity.page_digests import PageDigests
from litetool.engine.runtime.status import DatabaseState, EventKind, StatusBoard, publish_and_log
from litetool.engine.spool.spool import Spool
from litetool.engine.spool.spool_state import SpoolState
from litetool.errors import DatabaseError
from litetool.storage.generation_writer import GenerationWriter

# Proofs of continuity before a new generation starts instead, when the WAL
# keeps changing or the write lock stays taken (each waits up to 5 s for it).
RESUME_ATTEMPTS = 8
# How often the capture loop checks that the database's path still names the
# file it has open (see ``file_replaced``).
IDENTITY_CHECK_SECONDS = 0.5


class PublishedPoint(Protocol):
    """Where a replica stands, as far as the capture side asks (a ``ReplicaProgress``)."""

    @property
    def generation(self) -> str | None: ...

    @property
    def txid(self) -> int: ...


class Follower(Protocol):
    """A replica that follows the capture side (a ``ReplicaSync``): woken when
    transactions are captured, read for what it has published."""

    @property
    def progress(self) -> PublishedPoint: ...

    def notify(self, loop: asyncio.AbstractEventLoop) -> None: ...


class CaptureSide:
    """The database file, its spool and the generation captured from it."""

    def __init__(
        self,
        config,  # litetool.config.model.DatabaseConfig
        board: StatusBoard,
        replicas: list[Follower],
        *,
        log: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = Path(config.path)
        self.board = board
        self.replicas = replicas
        self.log = log
        self.clock = clock
        self.spool = Spool(config.resolved_spool_dir(), max_bytes=config.spool_max_bytes)
        self.fence = ReadFence(self.db_path)
        self.capture = Capture(self.db_path, self.spool, self.fence, clock=clock)
        self.checkpointer = Checkpointer(self.capture)
        self.brake = Brake(self.fence)
        # What the next start proves continuity with (``digest_keeper``).
        self.keeper = DigestKeeper(self.spool, self.db_path, log)
        self.wakeup: WalWakeup | None = None
        self.generation = ""
        self.generation_reason = ""
        self.writer_id = ""
        # The event loop of the replica tasks, once they run.
        self.loop: asyncio.AbstractEventLoop | None = None
        # The spool's state of the current generation (what a reopen resumes).
        self._state: SpoolState | None = None
        # (device, inode) of the database file litetool has open.
        self._db_identity: tuple[int, int] = (0, 0)
        self._identity_checked = 0.0
        self.reopen_pending = False
        self._missing_warned = False
        self._lock_fd = -1

    def notify_replicas(self) -> None:
        """Wake every replica task: there is something new for it."""
        if self.loop is None:
            return
        for replica in self.replicas:
            replica.notify(self.loop)

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        self._check_database()
        spool_dir = self.spool.directory
        created = not spool_dir.exists()
        try:
            self._open_spool_and_database()
        except BaseException:
            # A start that fails leaves nothing behind that it made.
            self.close()
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
        reason = "first run" if state is None else self.resume(state)
        if reason:
            self.new_generation(reason)
        else:
            self._state = state
        self.wakeup = WalWakeup(self.capture.wal_path)
        self.publish_status()

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

    # -- a database file replaced under litetool -------------------------------------------

    def _identity_of_open_file(self) -> tuple[int, int]:
        st = os.fstat(self.fence.raw_fd("db"))
        return st.st_dev, st.st_ino

    def file_replaced(self) -> bool:
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

    def reopen(self) -> None:
        """Follow a database file that was replaced: let go of the old one and
        prove continuity against the new one like a restart does (a restore in
        place of the latest point resumes; anything else starts a new
        generation, and the reason says the file was replaced)."""
        if not self.reopen_pending:
            self.reopen_pending = True
            self.log(
                "warning",
                "database file replaced",
                path=str(self.db_path),
                action="proving continuity against the new file",
            )
            self.keeper.stop()
            self.checkpointer.close()
            if self.wakeup is not None:
                self.wakeup.close()
            self.fence.close()
        self.fence = ReadFence(self.db_path)
        self.capture = Capture(self.db_path, self.spool, self.fence, clock=self.clock)
        self.checkpointer = Checkpointer(self.capture)
        self.brake = Brake(self.fence)
        try:
            self.fence.open()
        except DatabaseError as exc:
            self.fence.close()
            self.log("warning", "cannot open the new database file", error=exc.message)
            return  # tried again after IDENTITY_CHECK_SECONDS
        self.reopen_pending = False
        self._db_identity = self._identity_of_open_file()
        digests = self.keeper.digests
        reason = self.resume(self._state, digests=digests) if self._state else "no spool"
        if reason:
            detail = reason.replace(" while litetool was not running", "")
            self.new_generation(
                f"the database file was replaced while litetool was running: {detail}"
            )
        self.wakeup = WalWakeup(self.capture.wal_path)
        self.notify_replicas()
        self.publish_status()

    # -- generations -----------------------------------------------------------------------

    def resume(self, state: SpoolState, digests: PageDigests | None = None) -> str:
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
        self.generation = state.generation
        self.generation_reason = state.reason
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

    def new_generation(self, reason: str) -> None:
        generation = GenerationWriter.new_generation_id()
        unpublished = self._unpublished_count()
        state = self.capture.base_state(generation, reason)
        self.spool.start_generation(state)
        self._state = state
        self.keeper.drop()
        self.generation = generation
        self.generation_reason = reason
        publish_and_log(
            self.board,
            self.log,
            "warning" if reason != "first run" else "info",
            "new generation",
            str(self.db_path),
            f"new generation {generation}: {reason}",
            kind=EventKind.GENERATION,
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
        self.notify_replicas()

    def _unpublished_count(self) -> int:
        published = [
            progress.txid for r in self.replicas if (progress := r.progress).generation is not None
        ]
        if not published or not self.generation:
            return 0
        return max(0, self.capture.txid - min(published))

    # -- status and closing ----------------------------------------------------------------

    def publish_status(self) -> None:
        wal_size = 0
        db_size = 0
        with contextlib.suppress(OSError):
            wal_size = os.path.getsize(self.capture.wal_path)
        with contextlib.suppress(OSError):
            db_size = os.path.getsize(self.db_path)
        self.board.update_database(
            str(self.db_path),
            state=DatabaseState.REPLICATING,
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

    def close(self) -> None:
        self.checkpointer.close()  # first: a backfill in flight still wakes the loop
        self.keeper.close()  # the digests stay on disk for the next start
        if self.wakeup is not None:
            self.wakeup.close()
        self.fence.close()
        self.spool.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
