"""Capturing committed transactions from a live database's WAL into the spool.

``Capture`` is driven by one thread (the capture loop in
``litetool.engine.replication``): every call to ``capture_once`` reads the WAL
from the captured position to its end in large batches, keeps the whole
committed transactions (see ``_consume`` for how they are recognised), numbers
them (txid), stamps them with the capture time and appends them, as raw
frames, to the spool. The read fence moves only in controlled checkpoints,
which make the spool durable before the WAL may restart. See
``litetool.engine.fence`` for why no frame can be lost between calls.

Continuity. The position after the last captured transaction (WAL header,
offset, running checksum) is in the spool. A WAL header change seen while
running is a restart of a fully captured WAL: the fence guarantees nothing
else can happen while litetool runs. A WAL file replaced by another file is
not followed. After a restart of litetool itself, capture
resumes only if the WAL still has the same header and the chain verifies at
the saved offset. Anything else raises ``ContinuityLost`` with the reason,
and the caller starts a new generation.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from litetool.crashpoints import crash_point
from litetool.engine.buffers import ReusableBuffer
from litetool.engine.continuity import FileStat, Saved, Seal, Verdict, prove, wait_past
from litetool.engine.fence import CheckpointResult, ReadFence
from litetool.engine.memory import lower_thread_priority
from litetool.engine.page_digests import PageDigests
from litetool.engine.snapshot import SnapshotSource
from litetool.engine.spool import Spool
from litetool.engine.spool_codec import SpoolRecord, WalPosition
from litetool.errors import DatabaseError, WalFormatError
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    WAL_HEADER_SIZE,
    WalHeader,
    parse_wal_header,
)
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index

# Largest WAL read per batch: large batches keep the per-call overhead low.
READ_BATCH_BYTES = 1 << 20
# Controlled checkpoints backfill without the write lock first, in up to this
# many rounds, until at most LOCKED_TAIL_FRAMES are left for under the lock.
UNLOCKED_CHECKPOINT_ROUNDS = 6
# Between them, the fence moves and SQLite backfills every this many frames
# (SQLite's own automatic checkpoint cadence).
BACKFILL_STEP_FRAMES = 1000
LOCKED_TAIL_FRAMES = 2048
# Without a usable wal-index, verifying reads start at this size and grow
# while everything read is valid.
MIN_READ_BYTES = 64 << 10
# A frame of the current WAL after the captured position, in a file written
# this recently, is a transaction in flight (older: one a writer abandoned).
IN_FLIGHT_NS = 100_000_000
# How long a clean stop waits for SQLite's write lock to seal the database file.
SEAL_LOCK_SECONDS = 2.0


class ContinuityLost(Exception):
    """The WAL no longer continues the captured position; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CaptureBatch:
    """What one ``capture_once`` appended to the spool."""

    first_txid: int
    last_txid: int
    time_us: int
    wal_bytes: int


def _salts(raw: bytes) -> tuple[int, int]:
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")


class CommitClock:
    """When each commit became visible: the wal-index's ``mxFrame``, watched.

    SQLite publishes a commit by writing the wal-index header in ``-shm``
    (``mxFrame``: the last committed frame), a moment before COMMIT returns
    in the application. ``observe`` reads that header (two 48-byte copies,
    one ``pread``) and notes the time whenever ``mxFrame`` moved; the
    capture loop calls it about every millisecond between captures while
    commits come in. Captures then stamp each run of transactions with the
    time its last commit was first seen (``cut_after``), not with the
    capture's own time, so a transaction's time is late by about the
    observation interval whatever the capture spacing.
    """

    MAX_OBSERVATIONS = 4096

    def __init__(self) -> None:
        # (salts as raw bytes, WAL offset just past the last commit, time in us)
        self._seen: list[tuple[bytes, int, int]] = []
        self._last: tuple[bytes, int] = (b"", -1)

    def observe(self, shm_fd: int, page_size: int, now_us: Callable[[], int]) -> bool:
        """Read the wal-index header; True if a new commit became visible.

        The clock is read only after the header showed the commit, never
        before: a time taken before the read could precede a commit that
        landed in between (the thread may be descheduled there for
        milliseconds), and would then come before the transaction began."""
        if shm_fd < 0 or not page_size:
            return False
        index = parse_wal_index(os.pread(shm_fd, WAL_INDEX_READ_SIZE, 0))
        if index is None or not index.initialized:
            return False  # being written or rebuilt: the next look sees it whole
        mark = (index.salts, index.mx_frame)
        if mark == self._last:
            return False
        self._last = mark
        end = index.end_offset(page_size)
        if len(self._seen) >= self.MAX_OBSERVATIONS:
            del self._seen[: self.MAX_OBSERVATIONS // 2]
        self._seen.append((mark[0], end, now_us()))
        return True

    def cut_after(self, salts: bytes, offset: int) -> tuple[int, int] | None:
        """The first observed commit end after ``offset`` in the WAL with
        ``salts``, and when it was seen; None if none was observed."""
        for seen_salts, end, time_us in self._seen:
            if seen_salts == salts and end > offset:
                return end, time_us
        return None

    def ends_within(self, salts: bytes, start: int, end: int) -> list[tuple[int, int]]:
        """Observed commit ends in (start, end] of the WAL with ``salts``, in order."""
        return [(e, t) for s, e, t in self._seen if s == salts and start < e <= end]

    def forget_through(self, salts: bytes, offset: int) -> None:
        """Drop what was observed up to ``offset`` (captured), and of other WALs."""
        seen = self._seen
        if seen and (seen[0][0] != salts or seen[0][1] <= offset):
            self._seen = [s for s in seen if s[0] == salts and s[1] > offset]


class Capture:
    """The capture side of one database: WAL -> transactions -> spool."""

    def __init__(
        self,
        db_path: Path,
        spool: Spool,
        fence: ReadFence,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = db_path
        self.wal_path = Path(f"{db_path}-wal")
        self.spool = spool
        self.fence = fence
        self.clock = clock
        self.generation: str | None = None
        self.txid = 0
        self.position: WalPosition | None = None
        self.db_size_pages = 0
        self.page_size = 0
        self.last_time_us = 0
        self.wal_bytes_total = 0
        # (WAL header, offset) up to which litetool's last complete checkpoint went.
        self._checkpointed: tuple[bytes, int] | None = None
        self._read_buffer = ReusableBuffer(READ_BATCH_BYTES)
        self._last_header: tuple[WalHeader, bytes] | None = None
        # The unlocked part of a controlled checkpoint runs in its own thread.
        self._backfill_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._backfill: concurrent.futures.Future[CheckpointResult] | None = None
        self._checkpointing = False  # a checkpoint_step sequence is under way
        self._rounds = 0
        self._left = -1  # frames the last round left for the lock
        # The rounds of the checkpoint under way do not converge: the capture
        # loop holds the application's writers in short pulses until it is done.
        self.braking = False
        # Where the fence was last moved to (about: the WAL may have been longer).
        self._fence_header = b""
        self._fence_offset = 0
        self.commit_clock = CommitClock()
        # The WAL file's (size, mtime) at the last capture: a change means a
        # writer is at work (a transaction may be in flight).
        self._wal_stat: tuple[int, int] = (-1, -1)

    def observe_commits(self) -> bool:
        """Note the time if a new commit became visible (``CommitClock``)."""
        return self.commit_clock.observe(
            self.fence.raw_fd("shm"), self.page_size, lambda: int(self.clock() * 1e6)
        )

    def writer_active(self) -> bool:
        """Whether a writer may be at work on the WAL: the file changed since the
        last call, or it changed lately and the frame after the captured
        position belongs to this WAL (a transaction being written; after a
        restart the WAL is overwritten in place, which the file's size does
        not show and its coarse mtime may not either)."""
        fd = self._fd()
        if fd < 0:
            return False
        st = os.fstat(fd)
        stat = (st.st_size, st.st_mtime_ns)
        moved, self._wal_stat = stat != self._wal_stat, stat
        if moved:
            return True
        position = self.position
        if position is None or time.time_ns() - st.st_mtime_ns > IN_FLIGHT_NS:
            return False
        salts = os.pread(fd, 8, position.offset + 8)
        return salts == position.header[16:24]

    # -- state -----------------------------------------------------------------

    def restore_state(self, state: dict, last: SpoolRecord | None) -> None:
        """Take the generation and position from the spool."""
        self.generation = state["generation"]
        self.page_size = int(state["page_size"])
        if last is not None:
            self.txid = last.last_txid
            self.position = last.position
            self.db_size_pages = last.db_size_pages
            self.last_time_us = last.last_time_us
        else:
            self.txid = int(state["base_txid"])
            base = state.get("base_position")
            self.position = (
                WalPosition(bytes.fromhex(base["header"]), base["offset"], tuple(base["checksum"]))
                if base
                else None
            )
            self.db_size_pages = int(state["base_db_pages"])
            self.last_time_us = int(state["created_us"])

    def saved(self) -> Saved:
        """The restored position, as ``litetool.engine.continuity`` proves it."""
        assert self.generation is not None
        return Saved(self.generation, self.txid, self.position, self.page_size, self.db_size_pages)

    def prove_continuity(
        self, seal: Seal | None, digests: PageDigests | None, digests_missing: str
    ) -> Verdict:
        """Whether the live database continues the restored position (see
        ``litetool.engine.continuity``). Call with the fence open."""
        return prove(
            self.saved(),
            db_path=self.db_path,
            db_fd=self.fence.raw_fd("db"),
            wal_fd=self._fd(),
            shm_fd=self.fence.raw_fd("shm"),
            seal=seal,
            digests=digests,
            digests_missing=digests_missing,
            spool=self.spool,
        )

    def resume(self, verdict: Verdict) -> CaptureBatch | None:
        """Continue from a proven position, under the write lock: if the WAL is
        still the one proven, capture what was committed since (stamped with
        the WAL's modification time: the commits happened while litetool was
        not running). Raises ContinuityLost when the WAL changed meanwhile (the
        caller proves again)."""
        with self.fence.write_locked():
            header = self._read_header()
            raw = header[1] if header is not None else None
            if raw != verdict.wal.header:
                raise ContinuityLost("the WAL changed while continuity was being proven")
            if verdict.wal.restarted:
                # The image at the position is the database file's: every frame
                # of the live WAL is a new transaction.
                self.position = (
                    WalPosition(raw, WAL_HEADER_SIZE, header[0].checksum)
                    if header is not None and raw is not None
                    else None
                )
            stamp = None
            try:
                stamp = os.stat(self.wal_path).st_mtime_ns // 1000
            except OSError:
                pass
            return self.capture_once(time_us=stamp)

    def seal(self) -> Seal | None:
        """Under the write lock, capture the last commits and describe the
        database file as litetool leaves it (``continuity.Seal``); None when
        the write lock cannot be had in time (the next start then reads pages)."""
        try:
            with self.fence.write_locked(timeout=SEAL_LOCK_SECONDS):
                self._capture_tail()
                stat = FileStat.of(self.db_path)
                if stat is None or self.generation is None:
                    return None
                seal = Seal(self.generation, self.txid, stat, self._wal_fully_checkpointed())
                wait_past(stat)
                return seal
        except DatabaseError:
            return None

    def _wal_fully_checkpointed(self) -> bool:
        """Every committed frame of the live WAL is in the database file (or there is no WAL)."""
        header = self._read_header()
        if header is None:
            return True
        shm = self.fence.raw_fd("shm")
        if shm < 0:
            return False
        index = parse_wal_index(os.pread(shm, WAL_INDEX_READ_SIZE, 0))
        if index is None or not index.describes(header[1]):
            return False
        return index.fully_backfilled and self._captured_frames() == index.mx_frame

    def base_state(self, generation: str, reason: str) -> dict:
        """Capture everything committed now as the base (txid 0) of a new generation.

        Call with the fence held at the end of the WAL. Returns the state to save.
        """
        self.generation = generation
        self.page_size = self.fence.page_size()
        self.txid = 0
        self.position = None
        header = self._read_header()
        db_pages = os.path.getsize(self.db_path) // self.page_size if self.page_size else 0
        if header is not None:
            wal_header, raw = header
            self.position = WalPosition(raw, WAL_HEADER_SIZE, wal_header.checksum)
            # Skip over what is committed now: it is part of the base image.
            self.db_size_pages = 0
            self._consume(wal_header, spool=False)
            if self.db_size_pages:
                db_pages = self.db_size_pages
        self.db_size_pages = db_pages
        self.last_time_us = int(self.clock() * 1e6)
        base = (
            {
                "header": self.position.header.hex(),
                "offset": self.position.offset,
                "checksum": list(self.position.checksum),
            }
            if self.position
            else None
        )
        return {
            "format": 1,
            "generation": generation,
            "reason": reason,
            "created_us": self.last_time_us,
            "page_size": self.page_size,
            "base_txid": 0,
            "base_position": base,
            "base_db_pages": db_pages,
        }

    # -- capture ---------------------------------------------------------------

    def capture_once(self, *, time_us: int | None = None) -> CaptureBatch | None:
        """Capture every committed transaction not yet in the spool.

        ``time_us`` stamps them instead of the clock (never before the last
        stamp, never after now). Raises ContinuityLost when the WAL does not
        continue the position.
        """
        first_txid = self.txid + 1
        before = self.position
        self._capture_tail(time_us=time_us)
        # The fence moves in backfill steps and checkpoints, not here (see
        # ``backfill_step``).
        if self.txid < first_txid:
            return None
        assert self.position is not None
        same_wal = before is not None and before.header == self.position.header
        start = before.offset if same_wal else WAL_HEADER_SIZE
        wal_bytes = self.position.offset - start
        self.wal_bytes_total += wal_bytes
        return CaptureBatch(first_txid, self.txid, self.last_time_us, wal_bytes)

    @property
    def checkpoint_in_progress(self) -> bool:
        return self._checkpointing

    def backfill_step(self, on_backfilled: Callable[[], None] | None = None) -> None:
        """Keep SQLite's backfill going in the background, a step at a time.

        Once ``BACKFILL_STEP_FRAMES`` frames lie beyond the fence, a background
        thread moves the fence to the end of the WAL and at once runs a
        PASSIVE checkpoint up to it. Small steps matter: the application's
        automatic checkpoint (after each of its commits, once the WAL holds
        1000 frames) may get to the backfill first, and then it pays for it
        inside a commit, so a step never gives it more than SQLite's own
        cadence would. Restarting the WAL is ``checkpoint_step``'s job.
        """
        if self._checkpointing:
            return
        if self._backfill is not None:
            if not self._backfill.done():
                return
            future, self._backfill = self._backfill, None
            future.result()  # raises what the step raised
        if self.position is None or not self.page_size:
            return
        frame_size = FRAME_HEADER_SIZE + self.page_size
        fence = self._fence_offset if self._fence_header == self.position.header else 0
        beyond = (self.position.offset - max(fence, WAL_HEADER_SIZE)) // frame_size
        if beyond >= BACKFILL_STEP_FRAMES:
            self._submit_backfill(on_backfilled)

    def checkpoint_step(
        self, *, truncate: bool, on_backfilled: Callable[[], None] | None = None
    ) -> CheckpointResult | None:
        """Advance a controlled checkpoint (a WAL restart) without waiting for its slow part.

        The first call captures to the end of the WAL and starts a backfill
        round (``_submit_backfill``) in the background thread, so capture,
        and with it commit times, never waits for the copying and fsyncs.
        Later calls return None until the round is done (``on_backfilled``
        runs then, e.g. to wake the capture loop); then either another round
        starts, if the application wrote many frames meanwhile, or the
        checkpoint finishes under the write lock with only the last frames
        left, and its result is returned.
        """
        if not self._checkpointing:
            self._checkpointing = True
            self._rounds = 0
            self._left = -1
        unlocked = None
        if self._backfill is not None:
            if not self._backfill.done():
                return None
            future, self._backfill = self._backfill, None
            unlocked = future.result()
            if self._rounds == 0:
                unlocked = None  # that was a background step: the rounds start now
        if unlocked is None:
            self._capture_tail()
            self._submit_backfill(on_backfilled)
            return None
        # Left for the lock: what the round did not backfill, counted up to
        # where capture stands now (the application wrote on during the
        # round's fsyncs).
        left = max(unlocked.wal_frames, self._captured_frames()) - unlocked.checkpointed_frames
        more_rounds = self._rounds < UNLOCKED_CHECKPOINT_ROUNDS
        if more_rounds and not unlocked.busy and left > LOCKED_TAIL_FRAMES:
            if 0 <= self._left <= left:
                # The application writes faster than the rounds backfill and
                # flush (the disk is the limit): brake it until this
                # checkpoint is done (see ``braking``).
                self.braking = True
            self._left = left
            self._capture_tail()
            self._submit_backfill(on_backfilled)
            return None
        self._checkpointing = False
        self.braking = False
        self._ensure_pool()
        result = self.fence.checkpoint(self._capture_durably, truncate=truncate)
        if result.complete and self.position is not None:
            # Everything captured is in the database file now; the WAL restarts
            # on the next write. Until then nothing is left to checkpoint.
            self._checkpointed = (self.position.header, self.position.offset)
        return result

    def make_way(self) -> bool:
        """Move the fence to the end of the WAL for an application's checkpoint
        that waits for litetool's reader (``ReadFence.others_checkpoint``).

        Only between litetool's own checkpoint steps, right after a capture
        that found nothing new. What was captured is made durable first: once
        the WAL is wholly checkpointed the new reader sits on slot 0 and the
        application may restart (or truncate) the WAL, which litetool then
        follows. A commit that lands in between stays protected: it cannot be
        checkpointed past the old reader's mark, so the new reader stands
        after it (see ``litetool.engine.fence``).
        """
        if self._checkpointing or (self._backfill is not None and not self._backfill.done()):
            return False
        self.spool.sync()
        self.fence.advance()
        if self.position is not None:
            self._fence_header, self._fence_offset = self.position.header, self.position.offset
        return True

    def checkpoint(self, *, truncate: bool) -> CheckpointResult:
        """A whole controlled checkpoint, waiting for each step."""
        while True:
            result = self.checkpoint_step(truncate=truncate)
            if result is not None:
                return result
            assert self._backfill is not None
            concurrent.futures.wait([self._backfill])

    def _submit_backfill(self, on_backfilled: Callable[[], None] | None) -> None:
        """One round in the background thread: move the fence to the end of the
        WAL, PASSIVE checkpoint up to it straight away, then fdatasync the WAL,
        the database and the spool (the locked step syncs all three, writers
        waiting, so that they have little left to write then)."""
        self._ensure_pool()
        assert self._backfill_pool is not None
        self._rounds += 1
        if self.position is not None:
            self._fence_header, self._fence_offset = self.position.header, self.position.offset
        else:
            self._fence_header, self._fence_offset = b"", 0
        wal_fd = self._fd()
        db_fd = self.fence.raw_fd("db")

        def backfill() -> CheckpointResult:
            try:
                self.fence.advance()
                result = self.fence.backfill()
                if wal_fd >= 0:
                    os.fdatasync(wal_fd)
                # SQLite fsyncs the database only after a checkpoint that
                # reaches the end of the WAL, which only the locked step does:
                # without this, that fsync would write every page these rounds
                # copied (tens of MB at full speed) while writers wait.
                if result.checkpointed_frames > 0 and db_fd >= 0:
                    os.fdatasync(db_fd)
                # Last, so that the least is left for the locked step's sync.
                self.spool.sync()
                return result
            finally:
                if on_backfilled is not None:
                    on_backfilled()

        self._backfill = self._backfill_pool.submit(backfill)

    def _ensure_pool(self) -> None:
        if self._backfill_pool is None:
            self._backfill_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"backfill:{self.db_path.name}",
                initializer=lower_thread_priority,
            )

    def _capture_tail(self, *, time_us: int | None = None) -> None:
        """Capture every committed transaction up to the end of the WAL."""
        header = self._read_header()
        if header is not None:
            if self.position is None or header[1] != self.position.header:
                self._accept_new_header(*header)
            self._consume(header[0], spool=True, time_us=time_us)

    def _capture_durably(self) -> Callable[[], None]:
        """Under the write lock: capture the last frames and start the spool
        sync, which the fence awaits before it lets go of the lock.

        The WAL may restart after this checkpoint, the only moment SQLite could
        overwrite frames, so the spool must hold them durably first; the sync
        runs alongside SQLite's own backfill and fsyncs to keep writers' wait short.
        """
        self._capture_tail()
        assert self._backfill_pool is not None
        return self._backfill_pool.submit(self.spool.sync).result

    def open_snapshot(self, *, lock_timeout: float | None = None) -> SnapshotSource:
        """A consistent image at the current txid (see ``litetool.engine.snapshot``).

        Raises DatabaseError when SQLite's write lock cannot be had within
        ``lock_timeout`` (default: the fence's busy timeout)."""
        with self.fence.write_locked(timeout=lock_timeout):
            self._capture_tail()
            reader = self.fence.new_reader()
        try:
            return SnapshotSource(
                fence=self.fence,
                reader=reader,
                txid=self.txid,
                time_us=self.last_time_us,
                page_size=self.page_size,
                page_count=self.db_size_pages,
                wal_end_offset=self.position.offset if self.position else 0,
            )
        except OSError as exc:
            reader.close()
            raise DatabaseError(f"{self.db_path}: cannot read for a snapshot: {exc}") from None

    def _captured_frames(self, start: int = WAL_HEADER_SIZE) -> int:
        """Frames of the current WAL from offset ``start`` to the captured position."""
        if self.position is None or not self.page_size:
            return 0
        return max(0, self.position.offset - start) // (FRAME_HEADER_SIZE + self.page_size)

    def wal_frames(self) -> int:
        """Captured frames of the current WAL not yet checkpointed by litetool."""
        done = self._checkpointed
        if done is not None and self.position is not None and done[0] == self.position.header:
            return self._captured_frames(done[1])
        return self._captured_frames()

    def close(self) -> None:
        """Wait for a backfill in flight (descriptors belong to the fence)."""
        if self._backfill_pool is not None:
            self._backfill_pool.shutdown(wait=True)
            self._backfill_pool = None
        self._backfill = None

    # -- internals -------------------------------------------------------------

    def _fd(self) -> int:
        return self.fence.raw_fd("wal")

    def _read_header(self) -> tuple[WalHeader, bytes] | None:
        fd = self._fd()
        if fd < 0:
            return None
        raw = os.pread(fd, WAL_HEADER_SIZE, 0)
        if len(raw) < WAL_HEADER_SIZE:
            return None
        if self._last_header is not None and self._last_header[1] == raw:
            return self._last_header  # the same bytes: already parsed and checked
        try:
            header = parse_wal_header(raw)
        except WalFormatError as exc:
            raise DatabaseError(f"{self.wal_path}: {exc}") from None
        if not header.checksum_is_valid:
            return None  # SQLite treats this WAL as empty (being rewritten)
        self._last_header = (header, raw)
        return self._last_header

    def _indexed_end(self, raw_header: bytes) -> int:
        """The end of the WAL's last commit per the -shm wal-index, or 0.

        Only a hint for the read size (read unlocked, it may be a moment
        behind): the frames themselves are what counts. Both header copies
        must agree and carry the salts of ``raw_header`` (the WAL's header).
        """
        shm = self.fence.raw_fd("shm")
        if shm < 0:
            return 0
        index = parse_wal_index(os.pread(shm, WAL_INDEX_READ_SIZE, 0))
        if index is None or not index.initialized or not index.describes(raw_header):
            return 0
        return index.end_offset(self.page_size)

    def _time_runs(
        self, frames: memoryview, offset: int, count: int, indexed: bool
    ) -> tuple[tuple[tuple[int, int], ...], int]:
        """Commit-time runs for ``count`` transactions in ``frames`` (read at WAL
        ``offset``), and the time of the last one (0: not seen yet, use now).

        The observed commit ends inside the frames split them into runs: the
        transactions up to each end were first seen at its time. Only for
        frames the wal-index announced (``indexed``): elsewhere there is
        nothing to go by.
        """
        if not indexed:
            return (), 0
        from litetool.wal.reader import scan_commits

        assert self.position is not None
        salts = self.position.header[16:24]
        end = offset + len(frames)
        clock = self.commit_clock
        runs: list[tuple[int, int]] = []
        done = 0  # transactions placed in runs so far
        at = offset
        checksum = tuple(self.position.checksum)
        last_time = self.last_time_us
        for cut_end, seen_us in clock.ends_within(salts, offset, end):
            piece = frames[at - offset : cut_end - offset]
            scan = scan_commits(
                piece, page_size=self.page_size, salts=_salts(salts), checksum_state=checksum
            )
            if scan is None or scan.end_offset != len(piece) or scan.transaction_count == 0:
                break  # not a commit boundary of these frames: stop splitting
            done += scan.transaction_count
            checksum = scan.checksum_state
            at = cut_end
            last_time = max(last_time, seen_us)
            if done < count:
                runs.append((self.txid + done, last_time))
            else:
                return tuple(runs), last_time
        seen = clock.cut_after(salts, end - 1)
        return tuple(runs), (max(last_time, seen[1]) if seen is not None else 0)

    def _accept_new_header(self, header: WalHeader, raw: bytes) -> None:
        """Follow a restarted WAL from its first frame.

        While litetool runs, the fence allows a restart only of a WAL whose
        frames are all captured and checkpointed (see ``fence``), so a new
        header continues the lineage. Its checkpoint sequence and salts are
        not predictable (a connection that never restarted the WAL before
        writes sequence 0 and random salts), so they are not checked here.
        """
        if header.page_size != self.page_size:
            raise ContinuityLost(
                f"the page size changed from {self.page_size} to {header.page_size}"
            )
        self.position = WalPosition(raw, WAL_HEADER_SIZE, header.checksum)

    def _consume(self, wal_header: WalHeader, *, spool: bool, time_us: int | None = None) -> None:
        """Read committed transactions from the position to the end of the WAL.

        Two ways:

        - with a readable -shm wal-index for this WAL, up to the end it
          announces (``_indexed_end``, asked again once when full batches
          reach it): those frames are committed by SQLite's word, so only their
          headers are scanned (``scan_commits``: salts, page numbers, commit
          frames), no checksums. Frames past it are not committed yet (a
          transaction in flight, or one whose writer died before publishing
          it, which SQLite itself ignores): the next capture looks again;
        - without one (or if it disagrees with the frames), ``read_transactions``
          verifies the salts and the checksum chain, starting with a small read
          and growing it only while everything read is valid: after a WAL
          restart the file still holds the old WAL's frames past the new ones.

        With ``spool``, each batch is appended to the spool as new txids (raw
        frames, straight from the read buffer); without, the position just
        moves (a new generation's base image).
        """
        from litetool.wal.reader import StopReason, read_transactions, scan_commits

        _BUFFER_END = (StopReason.END_OF_DATA, StopReason.PARTIAL_FRAME)
        fd = self._fd()
        frame_size = FRAME_HEADER_SIZE + self.page_size
        batch_bytes = max(1, READ_BATCH_BYTES // frame_size) * frame_size
        assert self.position is not None
        indexed_end = self._indexed_end(self.position.header)
        refreshed = False
        took_full_batch = False  # it took long enough for more commits to land
        verified_bytes = MIN_READ_BYTES
        try:
            while True:
                assert self.position is not None
                offset = self.position.offset
                # Never ask for more than the file holds: reads are bounded by
                # the size now, and what is appended meanwhile waits for the next.
                available = os.fstat(fd).st_size - offset
                if indexed_end and offset >= indexed_end:
                    if refreshed or not took_full_batch:
                        return  # the rest is in flight: the next capture takes it
                    # Read before the batches just taken: at full speed the
                    # application committed more meanwhile.
                    refreshed = True
                    indexed_end = max(indexed_end, self._indexed_end(self.position.header))
                    if offset >= indexed_end:
                        return
                indexed = offset < indexed_end
                if indexed:
                    want = min(indexed_end - offset, batch_bytes, available)
                else:
                    want = min(verified_bytes, available)
                want = want // frame_size * frame_size
                if want < frame_size:
                    return
                buf = self._read_buffer.view(want)
                got = os.preadv(fd, [buf], offset) // frame_size * frame_size
                took_full_batch = took_full_batch or got >= batch_bytes
                buf = buf[:got]
                if got == 0:
                    return
                scan = None
                if indexed:
                    scan = scan_commits(
                        buf,
                        page_size=self.page_size,
                        salts=wal_header.salts,
                        checksum_state=tuple(self.position.checksum),
                    )
                if scan is not None:
                    end, checksum = scan.end_offset, scan.checksum_state
                    count, db_pages = scan.transaction_count, scan.db_size_after_commit
                    more = True  # the rest of the index, then what lies beyond it
                    if count == 0:
                        if want >= batch_bytes:
                            batch_bytes *= 2  # one transaction larger than the batch
                        else:
                            indexed_end = 0  # the index does not match the frames
                        continue
                else:
                    if indexed:
                        indexed_end = 0  # the index disagrees with the frames: verify all
                    result = read_transactions(
                        buf,
                        start_offset=0,
                        page_size=self.page_size,
                        salts=wal_header.salts,
                        checksum_state=tuple(self.position.checksum),
                        byte_order=wal_header.byte_order,
                    )
                    more = available > got and result.stop_reason in _BUFFER_END
                    if more:
                        # All valid so far: read more next time, beyond the
                        # batch size only for one transaction larger than that.
                        verified_bytes *= 2
                        if result.transactions:
                            verified_bytes = min(verified_bytes, batch_bytes)
                    if not result.transactions:
                        if more:
                            continue
                        return
                    end, checksum = result.end_offset, tuple(result.checksum_state)
                    count = len(result.transactions)
                    db_pages = result.transactions[-1].db_size_after_commit
                position = WalPosition(self.position.header, offset + end, checksum)
                if spool:
                    now_us = int(self.clock() * 1e6)
                    runs: tuple[tuple[int, int], ...] = ()
                    if time_us is not None:
                        stamp = max(min(time_us, now_us), self.last_time_us)
                    else:
                        # Each transaction carries the time its commit was first
                        # seen in the wal-index (``CommitClock``), else now.
                        runs, seen = self._time_runs(buf[:end], offset, count, scan is not None)
                        stamp = max(min(seen, now_us), self.last_time_us) if seen else now_us
                        stamp = max(stamp, self.last_time_us)
                    self.spool.append(
                        SpoolRecord(
                            self.txid + 1,
                            self.txid + count,
                            stamp,
                            self.position,
                            position,
                            db_pages,
                            end // frame_size,
                            buf[:end],
                            runs,
                        )
                    )
                    self.txid += count
                    self.last_time_us = stamp
                    crash_point("capture")
                self.position = position
                self.db_size_pages = db_pages
                if not more:
                    return
        finally:
            # After one huge transaction, do not keep its buffer.
            self._read_buffer.shrink(4 * READ_BATCH_BYTES)
            if self.position is not None:
                self.commit_clock.forget_through(self.position.header[16:24], self.position.offset)
