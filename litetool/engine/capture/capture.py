"""Capturing committed transactions from a live database's WAL into the spool.

``Capture`` is driven by one thread (the capture loop in
``litetool.engine.capture_thread``): every call to ``capture_once`` reads the WAL
from the captured position to its end in large batches, keeps the whole
committed transactions (see ``_consume`` for how they are recognised), numbers
them (txid), stamps them with the capture time and appends them, as raw
frames, to the spool. The read fence moves only in litetool's own
checkpoints (``litetool.engine.capture.checkpoint``), which make the spool durable
before the WAL may restart. See
``litetool.engine.capture.fence`` for why no frame can be lost between calls.

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

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from litetool.crashpoints import crash_point
from litetool.engine.capture.commit_clock import CommitClock
from litetool.engine.capture.fence import ReadFence
from litetool.engine.capture.snapshot import SnapshotSource
from litetool.engine.continuity.continuity import Saved, Seal, Verdict, prove
from litetool.engine.continuity.page_digests import PageDigests
from litetool.engine.runtime.buffers import ReusableBuffer
from litetool.engine.spool.spool import Spool
from litetool.engine.spool.spool_codec import SpoolRecord, WalPosition
from litetool.engine.spool.spool_state import SpoolState
from litetool.errors import DatabaseError, WalFormatError
from litetool.wal.header import (
    WAL_HEADER_SIZE,
    WalHeader,
    frames_between,
    frames_read_size,
    parse_wal_header,
    raw_salts,
    whole_frames,
)
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index

# Largest WAL read per batch: large batches keep the per-call overhead low.
READ_BATCH_BYTES = 1 << 20
# Without a usable wal-index, verifying reads start at this size and grow
# while everything read is valid.
MIN_READ_BYTES = 64 << 10


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
        self._read_buffer = ReusableBuffer(READ_BATCH_BYTES)
        self._last_header: tuple[WalHeader, bytes] | None = None
        self.commit_clock = CommitClock()

    def observe_commits(self) -> bool:
        """Note the time if a new commit became visible (``CommitClock``)."""
        return self.commit_clock.observe(
            self.fence.raw_fd("shm"), self.page_size, lambda: int(self.clock() * 1e6)
        )

    # -- state -----------------------------------------------------------------

    def restore_state(self, state: SpoolState, last: SpoolRecord | None) -> None:
        """Take the generation and position from the spool."""
        self.generation = state.generation
        self.page_size = state.page_size
        if last is not None:
            self.txid = last.last_txid
            self.position = last.position
            self.db_size_pages = last.db_size_pages
            self.last_time_us = last.last_time_us
        else:
            self.txid = state.base_txid
            self.position = state.base_position
            self.db_size_pages = state.base_db_pages
            self.last_time_us = state.created_us

    def saved(self) -> Saved:
        """The restored position, as ``litetool.engine.continuity.continuity`` proves it."""
        assert self.generation is not None
        return Saved(self.generation, self.txid, self.position, self.page_size, self.db_size_pages)

    def prove_continuity(
        self, seal: Seal | None, digests: PageDigests | None, digests_missing: str
    ) -> Verdict:
        """Whether the live database continues the restored position (see
        ``litetool.engine.continuity.continuity``). Call with the fence open."""
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
            header = self.read_header()
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

    def base_state(self, generation: str, reason: str) -> SpoolState:
        """Capture everything committed now as the base (txid 0) of a new generation.

        Call with the fence held at the end of the WAL. Returns the state to save.
        """
        self.generation = generation
        self.page_size = self.fence.page_size()
        self.txid = 0
        self.position = None
        header = self.read_header()
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
        return SpoolState(
            generation=generation,
            reason=reason,
            created_us=self.last_time_us,
            page_size=self.page_size,
            base_txid=0,
            base_position=self.position,
            base_db_pages=db_pages,
        )

    # -- capture ---------------------------------------------------------------

    def capture_once(self, *, time_us: int | None = None) -> CaptureBatch | None:
        """Capture every committed transaction not yet in the spool.

        ``time_us`` stamps them instead of the clock (never before the last
        stamp, never after now). Raises ContinuityLost when the WAL does not
        continue the position.
        """
        first_txid = self.txid + 1
        before = self.position
        self.capture_tail(time_us=time_us)
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

    def capture_tail(self, *, time_us: int | None = None) -> None:
        """Capture every committed transaction up to the end of the WAL."""
        header = self.read_header()
        if header is not None:
            if self.position is None or header[1] != self.position.header:
                self._accept_new_header(*header)
            self._consume(header[0], spool=True, time_us=time_us)

    def open_snapshot(self, *, lock_timeout: float | None = None) -> SnapshotSource:
        """A consistent image at the current txid (see ``litetool.engine.capture.snapshot``).

        Raises DatabaseError when SQLite's write lock cannot be had within
        ``lock_timeout`` (default: the fence's busy timeout)."""
        with self.fence.write_locked(timeout=lock_timeout):
            self.capture_tail()
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

    def captured_frames(self, start: int = WAL_HEADER_SIZE) -> int:
        """Frames of the current WAL from offset ``start`` to the captured position."""
        if self.position is None or not self.page_size:
            return 0
        return frames_between(start, self.position.offset, self.page_size)

    # -- internals -------------------------------------------------------------

    def _fd(self) -> int:
        return self.fence.raw_fd("wal")

    def read_header(self) -> tuple[WalHeader, bytes] | None:
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
        page_size = self.page_size
        batch_bytes = frames_read_size(READ_BATCH_BYTES, page_size)
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
                want = whole_frames(want, page_size)
                if want == 0:
                    return
                buf = self._read_buffer.view(want)
                got = whole_frames(os.preadv(fd, [buf], offset), page_size)
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
                        runs, seen = (), 0
                        if scan is not None:  # frames the wal-index announced
                            runs, seen = self.commit_clock.time_runs(
                                buf[:end],
                                offset,
                                count,
                                position=self.position,
                                page_size=self.page_size,
                                txid=self.txid,
                                last_time_us=self.last_time_us,
                            )
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
                            frames_between(0, end, page_size),
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
                self.commit_clock.forget_through(
                    raw_salts(self.position.header), self.position.offset
                )
