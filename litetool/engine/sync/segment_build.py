"""Segment payloads straight from spooled WAL frames (the upload hot path).

``SegmentBuilder`` builds a replica's next segment after its published txid
from the spool, in buffers it keeps (about ``SEGMENT_TARGET_BYTES`` of WAL
each; ``SpoolGap`` and ``TransactionTooLarge`` when no segment can continue).

``build_segment_from_spool`` reads each frame's page straight into its place
in the payload and its 24-byte header into a scratch buffer (one ``preadv``
per 512 frames), so a sync needs no buffer for the raw frames and copies each
page once. ``build_segment`` does the same from frames already in memory.

One pass of numpy copies per spool record into a reused buffer, no
per-frame Python: the page numbers are the first 4 bytes of each frame
header (already big-endian u32), the pages follow each 24-byte header, and
a commit frame is one whose "database size after commit" field is non-zero.
Each transaction gets its commit time from its record's time runs (the
record's own time when it has none). The rest of the payload's bytes (the
header, the transaction table, the page numbers) are written by the segment
codec's ``write_segment_tables``, the one writer of the layout (FORMAT.md
section 3).

Before a segment goes out, every frame is checked against SQLite's checksum
chain from its record's start (``_verify_chains``; numpy, about 5 GB/s): a
spool file changed on disk since the append (a failing disk, another
program) is ``SpoolDamaged``, never a published page, and the replica
starts over from a snapshot (``SpoolLost``).
"""

from __future__ import annotations

import itertools
import os
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from litetool.engine.runtime.buffers import ReusableBuffer
from litetool.engine.spool.spool import Spool, SpoolDamaged, SpooledRange
from litetool.engine.spool.spool_codec import SpoolRecord
from litetool.storage.format.segment import SegmentLayout, write_segment_tables
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    frame_grid,
    frame_offset,
    frame_parts,
    frame_size,
    parse_wal_header,
)

# A segment holds about this much WAL; a sync of a larger backlog uploads several
# and names them all in one record.
SEGMENT_TARGET_BYTES = 4 << 20
# A segment holds whole transactions and is built in memory (at its peak about
# three times its size: the payload, its compressed form, the request body). A
# spool record larger than this (one huge transaction: a VACUUM, a bulk load)
# goes up as a snapshot instead, whose chunks are read and sent 4 MiB at a time:
# the replica starts a new generation from the database (``TransactionTooLarge``).
MAX_SEGMENT_PAYLOAD_BYTES = 256 << 20
# Segment buffers that grew past this for one large segment are let go after
# it: a huge transaction must not keep its size in RSS for the process's life.
KEEP_SEGMENT_BUFFER_BYTES = 2 * SEGMENT_TARGET_BYTES


class SpoolGap(Exception):
    """The spool no longer holds the transactions after a replica's position (the
    spool cap dropped them): only a new generation from a snapshot continues it."""


class SpoolLost(SpoolGap):
    """The spool cannot give the transactions after a replica's position (a spool
    file was damaged after it was written): a new generation from a snapshot of
    the database, which holds them, continues it."""


class TransactionTooLarge(SpoolGap):
    """The next spooled transactions are too large for one segment
    (``MAX_SEGMENT_PAYLOAD_BYTES``): a new generation from a snapshot holds them."""


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


def _layout(records: Sequence[SpoolRecord]) -> SegmentLayout:
    if not records:
        raise ValueError("no records to build a segment from")
    page_size = records[0].page_size
    first_txid = records[0].first_txid
    txid = first_txid
    for record in records:
        if record.first_txid != txid or record.page_size != page_size:
            raise ValueError(f"spool records do not continue at txid {txid}")
        txid = record.last_txid + 1
    frames = sum(r.frame_count for r in records)
    return SegmentLayout(page_size, txid - first_txid, first_txid, frames)


def segment_payload_bytes(records: Sequence[SpoolRecord]) -> int:
    """The size of the payload of ``records``' segment (its uncompressed bytes)."""
    return _layout(records).total_size


def _finish(
    records: Sequence[SpoolRecord],
    layout: SegmentLayout,
    payload: memoryview,
    fields,  # numpy (frames x 6) big-endian u32: every frame's header, in order
    damaged: Callable[[int], Exception],
    check_ends: bool,
) -> BuiltSegment:
    """Check each record's transactions (and, with ``check_ends``, that each
    record's last frame carries the database size and checksum its header
    says), gather every transaction's commit time, database size and frame
    count from the frame headers, and have the codec write the segment header,
    transaction table and page numbers (the pages are in place already);
    ``damaged(index)`` is the error for record ``index``."""
    import numpy as np

    times = np.empty(layout.transaction_count, dtype=np.int64)
    db_pages = np.empty(layout.transaction_count, dtype=np.uint32)
    frame_counts = np.empty(layout.transaction_count, dtype=np.uint32)
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
        times[at : at + n] = record.commit_times() if record.time_runs else record.last_time_us
        db_pages[at : at + n] = mine[commits, 1]
        frame_counts[at : at + n] = np.diff(commits, prepend=-1)
        frame_at += count
    write_segment_tables(payload, layout, times, db_pages, frame_counts, fields[:, 0])
    return BuiltSegment(
        payload=payload,
        page_size=layout.page_size,
        first_txid=layout.first_txid,
        frame_count=layout.frame_count,
        times_us=array("q", times.tobytes()),
        db_pages=array("I", db_pages.tobytes()),
    )


def build_segment(records: Sequence[SpoolRecord], out: ReusableBuffer) -> BuiltSegment:
    """One segment holding every transaction of ``records`` (consecutive txids)."""
    import numpy as np

    layout = _layout(records)
    payload = out.view(layout.total_size)
    pages = np.frombuffer(payload, dtype=np.uint8)[layout.pages_offset : layout.total_size]
    pages = pages.reshape(layout.frame_count, layout.page_size)
    headers = []
    frame_at = 0
    for record in records:
        count = record.frame_count
        frame_headers, frame_pages = frame_parts(frame_grid(record.frames, layout.page_size, count))
        pages[frame_at : frame_at + count] = frame_pages
        headers.append(frame_headers)
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
    payload = out.view(layout.total_size)
    pages = payload[layout.pages_offset : layout.total_size]
    headers = scratch.view(layout.frame_count * FRAME_HEADER_SIZE)
    frame_at = 0
    for record, (fd, offset, path) in zip(records, located.sources, strict=True):
        for first in range(0, record.frame_count, _FRAMES_PER_READ):
            count = min(_FRAMES_PER_READ, record.frame_count - first)
            buffers = []
            for index in range(frame_at + first, frame_at + first + count):
                buffers.append(headers[index * FRAME_HEADER_SIZE : (index + 1) * FRAME_HEADER_SIZE])
                buffers.append(pages[index * page_size : (index + 1) * page_size])
            at = frame_offset(first, page_size, offset)
            if os.preadv(fd, buffers, at) != count * frame_size(page_size):
                raise SpoolDamaged(f"spool file {path} is shorter than its index")
        frame_at += record.frame_count
    fields = np.frombuffer(headers, dtype=">u4").reshape(layout.frame_count, FRAME_HEADER_SIZE // 4)

    def damaged(index: int) -> Exception:
        path = located.sources[index][2]
        return SpoolDamaged(f"spool file {path} is damaged (frames do not match their header)")

    # Every frame as SQLite wrote it: each record's checksum chain from its
    # start (a byte changed on disk since the append is caught, not published).
    _verify_chains(records, headers, pages, page_size, damaged)
    return _finish(records, layout, payload, fields, damaged, check_ends=True)


def _verify_chains(
    records: Sequence[SpoolRecord],
    headers: memoryview,
    pages: memoryview,
    page_size: int,
    damaged: Callable[[int], Exception],
) -> None:
    """Raise ``damaged(index)`` for the first record whose frames break their
    checksum chain: all records in one pass when their WALs share a byte order
    (always, but for a database moved between machines), else one at a time."""
    import bisect

    from litetool.wal.checksum_fast import verify_parted_frames

    firsts = list(itertools.accumulate((r.frame_count for r in records[:-1]), initial=0))
    orders = [parse_wal_header(record.start.header).byte_order for record in records]
    indexes = range(len(records))
    runs = [indexes] if len(set(orders)) == 1 else [indexes[i : i + 1] for i in indexes]
    for run in runs:
        begin, end = firsts[run[0]], firsts[run[-1]] + records[run[-1]].frame_count
        ok = verify_parted_frames(
            headers[begin * FRAME_HEADER_SIZE : end * FRAME_HEADER_SIZE],
            pages[begin * page_size : end * page_size],
            end - begin,
            page_size,
            orders[run[0]],
            [(firsts[i] - begin, records[i].start.checksum) for i in run],
        )
        if not ok.all():
            raise damaged(bisect.bisect_right(firsts, begin + int(ok.argmin())) - 1)


@dataclass(frozen=True, slots=True)
class NextSegment:
    """A replica's next segment, the commit time of its last txid, and whether
    the spool held more than a segment's worth after it (a backlog)."""

    segment: BuiltSegment
    last_time_us: int
    backlog: bool


class SegmentBuilder:
    """Builds one replica's segments from the spool, in buffers of its own: a
    sync costs no fresh multi-MiB allocations (see ``litetool.engine.runtime.buffers``)."""

    def __init__(self, spool: Spool, replica: str) -> None:
        self.spool = spool
        self.replica = replica  # its name, for errors
        self._payload = ReusableBuffer()
        self._headers = ReusableBuffer()
        # The spool's appended_bytes at which a full segment may be waiting.
        self._recheck_at = 0

    def full_segment_after(self, txid: int) -> bool:
        """Whether the spool holds more than a full segment after ``txid`` (cheap
        when too little was appended since the last look to fill one)."""
        spool = self.spool
        if spool.appended_bytes < self._recheck_at:
            return False
        waiting = spool.bytes_after(txid, SEGMENT_TARGET_BYTES)
        if waiting <= SEGMENT_TARGET_BYTES:
            self._recheck_at = spool.appended_bytes + SEGMENT_TARGET_BYTES - waiting
            return False
        return True

    def build_after(self, txid: int, through_txid: int | None) -> NextSegment | None:
        """The next segment after ``txid`` (up to ``through_txid`` when given) from
        the spool, or None when it holds nothing after it (in a worker thread).
        The payload is valid until ``let_go``."""
        try:
            return self._build_after(txid, through_txid)
        except SpoolDamaged as exc:
            raise SpoolLost(
                f"{exc}: replica {self.replica} cannot get the transactions after txid {txid} "
                "from the spool"
            ) from None

    def _build_after(self, txid: int, through_txid: int | None) -> NextSegment | None:
        located = self.spool.locate_after(txid, max_bytes=SEGMENT_TARGET_BYTES)
        try:
            left_out = located.left_out
            if through_txid is not None:
                keep = [i for i, r in enumerate(located.records) if r.last_txid <= through_txid]
                located.records = [located.records[i] for i in keep]
                located.sources = [located.sources[i] for i in keep]
            records = located.records
            if not records:
                return None
            if records[0].first_txid != txid + 1:
                raise SpoolGap(
                    f"the spool no longer holds txid {txid + 1} for replica {self.replica} "
                    f"(it starts at {records[0].first_txid})"
                )
            # Only a first record may exceed the segment target (locate_after).
            first = records[0]
            size = segment_payload_bytes(records[:1])
            if size > MAX_SEGMENT_PAYLOAD_BYTES:
                raise TransactionTooLarge(
                    f"txids {first.first_txid}..{first.last_txid} hold {size >> 20} MiB of "
                    f"pages, more than one segment may ({MAX_SEGMENT_PAYLOAD_BYTES >> 20} MiB)"
                )
            segment = build_segment_from_spool(located, self._payload, self._headers)
        finally:
            located.close()
        # A full segment's worth was there: more is waiting, so it goes in
        # the same record; what arrives meanwhile goes with the next sync.
        backlog = left_out and (through_txid is None or segment.last_txid < through_txid)
        return NextSegment(segment, records[-1].last_time_us, backlog)

    def let_go(self) -> None:
        """The last segment is stored: give back what a large one grew the buffers to."""
        self._payload.shrink(KEEP_SEGMENT_BUFFER_BYTES)
        self._headers.shrink(KEEP_SEGMENT_BUFFER_BYTES)
