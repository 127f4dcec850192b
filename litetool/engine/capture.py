"""Capturing committed transactions from a live database's WAL into the spool.

``Capture`` is driven by one thread (the capture loop in
``litetool.engine.replication``): every call to ``capture_once`` reads the WAL
from the captured position to its end in large batches, keeps the whole
committed transactions (``litetool.wal`` verifies salts and the checksum
chain), numbers them (txid), stamps them with the capture time, appends them
to the spool (fdatasync), and only then advances the read fence. See
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

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from litetool.engine.fence import CheckpointResult, ReadFence
from litetool.engine.snapshot import SnapshotSource
from litetool.engine.spool import Spool, SpoolRecord, WalPosition
from litetool.errors import DatabaseError, WalFormatError
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    WAL_HEADER_SIZE,
    WalHeader,
    parse_wal_header,
)

# Largest WAL read per batch: large batches keep the per-call overhead low.
READ_BATCH_BYTES = 4 << 20


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


def encode_segment_from_frames(
    frames: bytes | bytearray | memoryview,
    *,
    page_size: int,
    first_txid: int,
    commit_time_us: int,
) -> tuple[bytes, int, int]:
    """A segment payload (FORMAT.md section 3) straight from WAL frames.

    ``frames`` holds whole frames (24-byte header + page) ending with a commit
    frame; every transaction gets ``commit_time_us``. One numpy pass, no
    per-frame Python: this is the capture hot path. Returns the payload, the
    number of transactions and the database size after the last one.
    """
    import numpy as np

    frame_size = FRAME_HEADER_SIZE + page_size
    count = len(frames) // frame_size
    grid = np.frombuffer(frames, dtype=np.uint8, count=count * frame_size).reshape(
        count, frame_size
    )
    header_words = grid[:, :8].copy().view(">u4")  # page number, db size after commit
    commits = np.flatnonzero(header_words[:, 1])
    if commits.size == 0 or commits[-1] != count - 1:
        raise ValueError("frames must end with a commit frame")
    frame_counts = np.diff(commits, prepend=-1)
    table = np.empty(commits.size, dtype=[("time", ">i8"), ("db_pages", ">u4"), ("frames", ">u4")])
    table["time"] = commit_time_us
    table["db_pages"] = header_words[commits, 1]
    table["frames"] = frame_counts
    header = np.array(
        [(page_size, commits.size, first_txid, count)],
        dtype=[("page_size", ">u4"), ("count", ">u4"), ("first", ">u8"), ("frames", ">u4")],
    )
    payload = b"".join(
        (
            header.tobytes(),
            table.tobytes(),
            grid[:, :4].tobytes(),  # page numbers, already big-endian u32
            grid[:, FRAME_HEADER_SIZE:].tobytes(),
        )
    )
    return payload, int(commits.size), int(header_words[commits[-1], 1])


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

    def verify_resumable(self) -> None:
        """Raise ContinuityLost unless the live WAL continues the saved position."""
        header = self._read_header()
        if self.position is None:
            if header is not None:
                raise ContinuityLost("a WAL appeared while litetool was not running")
            return
        if header is None:
            raise ContinuityLost("the WAL was reset or deleted while litetool was not running")
        if header[1] != self.position.header:
            raise ContinuityLost("the WAL was restarted while litetool was not running")
        if self.position.offset > WAL_HEADER_SIZE:
            # The frame before the saved offset must still hold the checksum we saved.
            frame_size = FRAME_HEADER_SIZE + self.page_size
            stored = os.pread(self._fd(), 8, self.position.offset - frame_size + 16)
            if len(stored) < 8 or (
                int.from_bytes(stored[:4], "big"),
                int.from_bytes(stored[4:], "big"),
            ) != tuple(self.position.checksum):
                raise ContinuityLost("the WAL was overwritten while litetool was not running")

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

    def capture_once(self) -> CaptureBatch | None:
        """Capture every committed transaction not yet in the spool.

        Raises ContinuityLost when the WAL does not continue the position.
        """
        first_txid = self.txid + 1
        start = self.position.offset if self.position else 0
        header = self._read_header()
        if header is not None:
            if self.position is None or header[1] != self.position.header:
                self._accept_new_header(*header)
                start = WAL_HEADER_SIZE
            self._consume(header[0], spool=True)
        # Every frame below the current end is durable now: move the fence.
        self.fence.advance()
        if self.txid < first_txid:
            return None
        wal_bytes = self.position.offset - start
        self.wal_bytes_total += wal_bytes
        return CaptureBatch(first_txid, self.txid, self.last_time_us, wal_bytes)

    def checkpoint(self, *, truncate: bool) -> CheckpointResult:
        """A controlled checkpoint (see ``ReadFence.checkpoint``)."""

        def capture_tail() -> None:
            header = self._read_header()
            if header is not None:
                if self.position is None or header[1] != self.position.header:
                    self._accept_new_header(*header)
                self._consume(header[0], spool=True)

        result = self.fence.checkpoint(capture_tail, truncate=truncate)
        if result.complete and self.position is not None:
            # Everything captured is in the database file now; the WAL restarts
            # on the next write. Until then nothing is left to checkpoint.
            self._checkpointed = (self.position.header, self.position.offset)
        return result

    def open_snapshot(self) -> SnapshotSource:
        """A consistent image at the current txid (see ``litetool.engine.snapshot``)."""
        with self.fence.write_locked():
            header = self._read_header()
            if header is not None:
                if self.position is None or header[1] != self.position.header:
                    self._accept_new_header(*header)
                self._consume(header[0], spool=True)
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

    def transactions_after_position(self) -> int:
        """Committed transactions in the WAL after the position, without taking them.

        -1 when the WAL no longer continues the position.
        """
        from litetool.wal.reader import read_transactions

        header = self._read_header()
        if header is None or self.position is None:
            return 0 if header is None else -1
        if header[1] != self.position.header:
            return -1
        size = os.fstat(self._fd()).st_size - self.position.offset
        if size <= 0:
            return 0
        buf = os.pread(self._fd(), size, self.position.offset)
        result = read_transactions(
            buf,
            start_offset=0,
            page_size=self.page_size,
            salts=header[0].salts,
            checksum_state=tuple(self.position.checksum),
            byte_order=header[0].byte_order,
        )
        return len(result.transactions)

    def wal_frames(self) -> int:
        """Captured frames of the current WAL not yet checkpointed by litetool."""
        if self.position is None or not self.page_size:
            return 0
        start = WAL_HEADER_SIZE
        if self._checkpointed is not None and self._checkpointed[0] == self.position.header:
            start = self._checkpointed[1]
        return max(0, self.position.offset - start) // (FRAME_HEADER_SIZE + self.page_size)

    def close(self) -> None:
        """Nothing to release: descriptors belong to the fence."""

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
        try:
            header = parse_wal_header(raw)
        except WalFormatError as exc:
            raise DatabaseError(f"{self.wal_path}: {exc}") from None
        if not header.checksum_is_valid:
            return None  # SQLite treats this WAL as empty (being rewritten)
        return header, raw

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

    def _consume(self, wal_header: WalHeader, *, spool: bool) -> None:
        """Read committed transactions from the position to the end of the WAL.

        With ``spool``, each batch is appended to the spool as new txids;
        without, the position just moves (a new generation's base image).
        """
        from litetool.wal.reader import StopReason, read_transactions

        _BUFFER_END = (StopReason.END_OF_DATA, StopReason.PARTIAL_FRAME)
        fd = self._fd()
        frame_size = FRAME_HEADER_SIZE + self.page_size
        batch_bytes = max(1, READ_BATCH_BYTES // frame_size) * frame_size
        while True:
            assert self.position is not None
            offset = self.position.offset
            # Never ask for more than the file holds: os.pread allocates the
            # whole length up front, which costs more than the read when idle-ish.
            available = os.fstat(fd).st_size - offset
            buf = os.pread(fd, min(batch_bytes, max(available, 0)), offset)
            if len(buf) < frame_size:
                return
            result = read_transactions(
                buf,
                start_offset=0,
                page_size=self.page_size,
                salts=wal_header.salts,
                checksum_state=tuple(self.position.checksum),
                byte_order=wal_header.byte_order,
            )
            more = available > len(buf) and result.stop_reason in _BUFFER_END
            if not result.transactions:
                if more:
                    # One transaction larger than the batch: read a larger batch.
                    batch_bytes *= 2
                    continue
                return
            position = WalPosition(
                self.position.header, offset + result.end_offset, tuple(result.checksum_state)
            )
            db_pages = result.transactions[-1].db_size_after_commit
            if spool:
                time_us = max(int(self.clock() * 1e6), self.last_time_us)
                payload, count, _ = encode_segment_from_frames(
                    memoryview(buf)[: result.end_offset],
                    page_size=self.page_size,
                    first_txid=self.txid + 1,
                    commit_time_us=time_us,
                )
                self.spool.append(
                    SpoolRecord(
                        self.txid + 1, self.txid + count, time_us, position, db_pages, payload
                    )
                )
                self.txid += count
                self.last_time_us = time_us
            self.position = position
            self.db_size_pages = db_pages
            if not more:
                return
