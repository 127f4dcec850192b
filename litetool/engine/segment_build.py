"""Segment payloads straight from spooled WAL frames (the upload hot path).

``build_segment_from_spool`` reads each frame's page straight into its place
in the payload and its 24-byte header into a scratch buffer (one ``preadv``
per 512 frames), so a sync needs no buffer for the raw frames and copies each
page once. ``build_segment`` does the same from frames already in memory.

One pass of numpy copies per spool record into a reused buffer, no
per-frame Python: the page numbers are the first 4 bytes of each frame
header (already big-endian u32), the pages follow each 24-byte header, and
a commit frame is one whose "database size after commit" field is non-zero.
Each transaction gets its commit time from its record's time runs (the
record's own time when it has none; FORMAT.md section 3 for the payload
layout).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from litetool.engine.buffers import ReusableBuffer
from litetool.engine.spool import SpooledRange
from litetool.engine.spool_codec import SpoolRecord
from litetool.errors import DatabaseError
from litetool.storage.format.segment import (
    PAGE_NUMBER_SIZE,
    SEGMENT_HEADER_SIZE,
    TRANSACTION_ENTRY_SIZE,
)
from litetool.wal.header import FRAME_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class BuiltSegment:
    """A payload view (valid until the buffer's next use) and what the index needs."""

    payload: memoryview
    page_size: int
    first_txid: int
    frame_count: int
    times_us: array
    db_pages: array

    @property
    def last_txid(self) -> int:
        return self.first_txid + len(self.times_us) - 1


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each part of the payload of ``records``' segment goes (FORMAT.md 3)."""

    page_size: int
    first_txid: int
    transactions: int
    frames: int
    numbers_at: int
    pages_at: int
    total: int


def _layout(records: Sequence[SpoolRecord]) -> _Layout:
    if not records:
        raise ValueError("no records to build a segment from")
    page_size = records[0].page_size
    first_txid = records[0].first_txid
    txid = first_txid
    for record in records:
        if record.first_txid != txid or record.page_size != page_size:
            raise ValueError(f"spool records do not continue at txid {txid}")
        txid = record.last_txid + 1
    transactions = txid - first_txid
    frames = sum(r.frame_count for r in records)
    numbers_at = SEGMENT_HEADER_SIZE + TRANSACTION_ENTRY_SIZE * transactions
    pages_at = numbers_at + PAGE_NUMBER_SIZE * frames
    total = pages_at + page_size * frames
    return _Layout(page_size, first_txid, transactions, frames, numbers_at, pages_at, total)


def segment_payload_bytes(records: Sequence[SpoolRecord]) -> int:
    """The size of the payload of ``records``' segment (its uncompressed bytes)."""
    return _layout(records).total


def _finish(
    records: Sequence[SpoolRecord],
    layout: _Layout,
    payload: memoryview,
    fields,  # numpy (frames x 6) big-endian u32: every frame's header, in order
    damaged: Callable[[int], Exception],
    check_ends: bool,
) -> BuiltSegment:
    """Write the segment header, transaction table and page numbers from the
    frame headers (the pages are in place already), checking each record's
    transactions (and, with ``check_ends``, that each record's last frame
    carries the database size and checksum its header says);
    ``damaged(index)`` is the error for record ``index``."""
    import numpy as np

    raw = np.frombuffer(payload, dtype=np.uint8)
    raw[layout.numbers_at : layout.pages_at].view(">u4")[:] = fields[:, 0]
    table = np.frombuffer(
        payload[SEGMENT_HEADER_SIZE : layout.numbers_at],
        dtype=[("time", ">i8"), ("db_pages", ">u4"), ("frames", ">u4")],
    )
    frame_at = 0
    for index, record in enumerate(records):
        count = record.frame_count
        mine = fields[frame_at : frame_at + count]
        commits = np.flatnonzero(mine[:, 1])
        n = record.last_txid - record.first_txid + 1
        last = mine[count - 1]
        ends_differ = check_ends and (
            int(last[1]) != record.db_size_pages
            or (int(last[4]), int(last[5])) != tuple(record.position.checksum)
        )
        if commits.size != n or commits[-1] != count - 1 or ends_differ:
            raise damaged(index)
        at = record.first_txid - layout.first_txid
        rows = table[at : at + n]
        rows["time"] = record.commit_times() if record.time_runs else record.last_time_us
        rows["db_pages"] = mine[commits, 1]
        rows["frames"] = np.diff(commits, prepend=-1)
        frame_at += count
    header = np.frombuffer(
        payload[:SEGMENT_HEADER_SIZE],
        dtype=[("page_size", ">u4"), ("count", ">u4"), ("first", ">u8"), ("frames", ">u4")],
    )
    header[0] = (layout.page_size, layout.transactions, layout.first_txid, layout.frames)
    return BuiltSegment(
        payload=payload,
        page_size=layout.page_size,
        first_txid=layout.first_txid,
        frame_count=layout.frames,
        times_us=array("q", table["time"].astype(np.int64).tobytes()),
        db_pages=array("I", table["db_pages"].astype(np.uint32).tobytes()),
    )


def build_segment(records: Sequence[SpoolRecord], out: ReusableBuffer) -> BuiltSegment:
    """One segment holding every transaction of ``records`` (consecutive txids)."""
    import numpy as np

    layout = _layout(records)
    frame_size = FRAME_HEADER_SIZE + layout.page_size
    payload = out.view(layout.total)
    pages = np.frombuffer(payload, dtype=np.uint8)[layout.pages_at : layout.total]
    pages = pages.reshape(layout.frames, layout.page_size)
    headers = []
    frame_at = 0
    for record in records:
        count = record.frame_count
        grid = np.frombuffer(record.frames, dtype=np.uint8, count=count * frame_size)
        grid = grid.reshape(count, frame_size)
        pages[frame_at : frame_at + count] = grid[:, FRAME_HEADER_SIZE:]
        headers.append(grid[:, :FRAME_HEADER_SIZE])
        frame_at += count
    fields = np.concatenate(headers).view(">u4")

    def damaged(index: int) -> Exception:
        record = records[index]
        n = record.last_txid - record.first_txid + 1
        return ValueError(
            f"spool record at txid {record.first_txid} does not hold {n} whole transactions"
        )

    return _finish(records, layout, payload, fields, damaged, check_ends=False)


# preadv takes at most IOV_MAX (1024 on Linux) buffers: a header and a page each.
_FRAMES_PER_READ = 512


def build_segment_from_spool(
    located: SpooledRange, out: ReusableBuffer, scratch: ReusableBuffer
) -> BuiltSegment:
    """``build_segment`` of ``located``'s records, reading their frames from the spool."""
    import numpy as np

    records = located.records
    layout = _layout(records)
    page_size = layout.page_size
    frame_size = FRAME_HEADER_SIZE + page_size
    payload = out.view(layout.total)
    pages = payload[layout.pages_at : layout.total]
    headers = scratch.view(layout.frames * FRAME_HEADER_SIZE)
    frame_at = 0
    for record, (fd, offset, path) in zip(records, located.sources, strict=True):
        for first in range(0, record.frame_count, _FRAMES_PER_READ):
            count = min(_FRAMES_PER_READ, record.frame_count - first)
            buffers = []
            for index in range(frame_at + first, frame_at + first + count):
                buffers.append(headers[index * FRAME_HEADER_SIZE : (index + 1) * FRAME_HEADER_SIZE])
                buffers.append(pages[index * page_size : (index + 1) * page_size])
            if os.preadv(fd, buffers, offset + first * frame_size) != count * frame_size:
                raise DatabaseError(f"spool file {path} is shorter than its index")
        frame_at += record.frame_count
    fields = np.frombuffer(headers, dtype=">u4").reshape(layout.frames, FRAME_HEADER_SIZE // 4)

    def damaged(index: int) -> Exception:
        path = located.sources[index][2]
        return DatabaseError(f"spool file {path} is damaged (frames do not match their header)")

    return _finish(records, layout, payload, fields, damaged, check_ends=True)
