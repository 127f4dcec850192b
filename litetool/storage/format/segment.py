"""Segment payload codec (object kind 1; docs/FORMAT.md section 3).

A segment holds the frames of one or more whole, consecutive transactions.
Byte layout, integers big-endian::

    offset   size          field
    0        4             page_size (a power of two, 512..65536)
    4        4             transaction_count T (>= 1)
    8        8             first_txid
    16       4             frame_count F (>= T)
    20       16*T          per transaction: commit_time_us (i64, Unix epoch, UTC),
                                            db_size_pages (u32, 1..MAX_PAGE_NUMBER, from the
                                                           commit frame),
                                            frame_count   (u32, >= 1)
    20+16T   4*F           page number (1..MAX_PAGE_NUMBER) of each frame, in WAL order
    ...      F*page_size   page images, in the same order

Transaction ``i`` has txid ``first_txid + i``; the per-transaction frame
counts sum to F; the payload ends exactly after the last page. A later frame
for the same page number supersedes an earlier one. ``MAX_PAGE_NUMBER`` is
SQLite's largest page number (2^32 - 2): no database has a page 2^32 - 1 or
that many pages. A frame's page number may exceed its own transaction's
database size: SQLite spills pages of a large transaction to the WAL before
its commit, and a transaction that then shrinks the database (auto-vacuum)
leaves those frames behind; readers ignore pages beyond the size.

Pure: bytes in, values out. :func:`write_segment_tables` is the one writer of
these bytes but the page images (the header, the transaction table, the page
numbers), into a buffer the caller gives: :func:`encode_segment`,
:func:`concat_segments` and the engine's segment builder (which places the
page images itself, straight from the spool) all call it.
:func:`decode_segment` never copies page images (it returns a memoryview over
the payload) and checks every count against the payload size before
allocating anything, so a hostile payload raises ``ReplicaFormatError``
rather than ``MemoryError`` or ``IndexError``.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from litetool.errors import ReplicaFormatError
from litetool.wording import plural

SEGMENT_HEADER_SIZE = 20
TRANSACTION_ENTRY_SIZE = 16
PAGE_NUMBER_SIZE = 4
MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 65536
MAX_U32 = (1 << 32) - 1
#: SQLite's largest page number and database size in pages (SQLITE_MAX_PAGE_COUNT's ceiling).
MAX_PAGE_NUMBER = MAX_U32 - 1
MAX_TXID = (1 << 63) - 1

_HEADER = struct.Struct(">IIQI")
_TRANSACTION = struct.Struct(">qII")
# The same transaction entry as numpy fields (the writer fills whole columns).
_TRANSACTION_FIELDS = [("commit_time_us", ">i8"), ("db_size_pages", ">u4"), ("frame_count", ">u4")]
_NATIVE_LITTLE_ENDIAN = sys.byteorder == "little"

# array typecodes with the sizes the format needs (true on every platform
# CPython supports today; checked so a surprise fails loudly, not silently).
if array("I").itemsize != 4 or array("q").itemsize != 8:  # pragma: no cover
    raise ImportError("litetool needs array('I') of 4 bytes and array('q') of 8 bytes")


class TransactionFrames(Protocol):
    """What :func:`encode_segment` needs per transaction (any object with these)."""

    commit_time_us: int
    db_size_pages: int
    page_numbers: Sequence[int]
    pages: bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class SegmentTransaction:
    """One committed transaction's frames: ``pages`` is ONE buffer of
    ``len(page_numbers) * page_size`` bytes, in the order of ``page_numbers``."""

    commit_time_us: int
    db_size_pages: int
    page_numbers: Sequence[int]
    pages: bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, eq=False)
class Segment:
    """A decoded segment. Arrays are indexed by transaction (``commit_times_us``,
    ``db_sizes_pages``, ``frame_counts``) or by frame (``page_numbers``);
    ``pages`` is a zero-copy view of all page images, frame after frame."""

    page_size: int
    first_txid: int
    commit_times_us: array
    db_sizes_pages: array
    frame_counts: array
    page_numbers: array
    pages: memoryview

    @property
    def transaction_count(self) -> int:
        return len(self.commit_times_us)

    @property
    def frame_count(self) -> int:
        return len(self.page_numbers)

    @property
    def last_txid(self) -> int:
        return self.first_txid + len(self.commit_times_us) - 1

    def page(self, frame_index: int) -> memoryview:
        """The page image of frame *frame_index* (a view, no copy)."""
        if not 0 <= frame_index < len(self.page_numbers):
            raise IndexError(frame_index)
        start = frame_index * self.page_size
        return self.pages[start : start + self.page_size]

    def frames_through(self, txid: int) -> int:
        """How many leading frames belong to transactions up to and including *txid*."""
        if not self.first_txid <= txid <= self.last_txid:
            raise ValueError(
                f"txid {txid} is not in this segment ({self.first_txid}..{self.last_txid})"
            )
        return sum(self.frame_counts[: txid - self.first_txid + 1])

    def commit_time_us(self, txid: int) -> int:
        return self.commit_times_us[self._index(txid)]

    def db_size_pages(self, txid: int) -> int:
        return self.db_sizes_pages[self._index(txid)]

    def _index(self, txid: int) -> int:
        if not self.first_txid <= txid <= self.last_txid:
            raise ValueError(
                f"txid {txid} is not in this segment ({self.first_txid}..{self.last_txid})"
            )
        return txid - self.first_txid


def segment_payload_length(transaction_count: int, frame_count: int, page_size: int) -> int:
    """The exact payload length of a segment with these counts."""
    return (
        SEGMENT_HEADER_SIZE
        + TRANSACTION_ENTRY_SIZE * transaction_count
        + frame_count * (PAGE_NUMBER_SIZE + page_size)
    )


def is_valid_page_size(page_size: object) -> bool:
    """SQLite page sizes: powers of two from 512 to 65536."""
    return (
        type(page_size) is int
        and MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE
        and page_size & (page_size - 1) == 0
    )


@dataclass(frozen=True, slots=True)
class SegmentLayout:
    """A segment's header fields and where each part of its payload starts."""

    page_size: int
    transaction_count: int
    first_txid: int
    frame_count: int

    @property
    def numbers_offset(self) -> int:
        return SEGMENT_HEADER_SIZE + TRANSACTION_ENTRY_SIZE * self.transaction_count

    @property
    def pages_offset(self) -> int:
        return self.numbers_offset + PAGE_NUMBER_SIZE * self.frame_count

    @property
    def total_size(self) -> int:
        return segment_payload_length(self.transaction_count, self.frame_count, self.page_size)


def write_segment_tables(
    payload: bytearray | memoryview,
    layout: SegmentLayout,
    commit_times_us: Sequence[int],
    db_sizes_pages: Sequence[int],
    frame_counts: Sequence[int],
    page_numbers: Sequence[int],
) -> None:
    """Write the header, the transaction table and the page numbers of the
    segment *layout* describes into the first ``layout.pages_offset`` bytes of
    *payload*; the page images (from ``pages_offset`` on) are the caller's.

    The columns are indexed by transaction (commit times, database sizes,
    frame counts) or by frame (page numbers): lists, ``array`` or numpy arrays
    (any integer dtype and byte order: the engine passes its frame headers'
    big-endian page numbers as they are). Raises ``ValueError`` for a layout
    or columns no segment has (a caller bug); the values themselves are the
    caller's to check (``encode_segment`` does).
    """
    import numpy as np

    if not is_valid_page_size(layout.page_size):
        raise ValueError(f"invalid page size {layout.page_size!r}")
    count, frames = layout.transaction_count, layout.frame_count
    if count < 1:
        raise ValueError("a segment holds at least one transaction")
    if layout.first_txid < 0 or layout.first_txid + count - 1 > MAX_TXID:
        raise ValueError(f"txids {layout.first_txid}..+{count} out of range")
    if frames > MAX_U32:
        raise ValueError(f"{plural(frames, 'frame')} do not fit one segment")
    columns = (commit_times_us, db_sizes_pages, frame_counts)
    if any(len(column) != count for column in columns) or len(page_numbers) != frames:
        raise ValueError(
            f"column lengths {[len(column) for column in columns]} and page numbers "
            f"{len(page_numbers)} do not match a layout of "
            f"{plural(count, 'transaction')} and {plural(frames, 'frame')}"
        )
    raw = np.frombuffer(payload, dtype=np.uint8, count=layout.pages_offset)
    _HEADER.pack_into(payload, 0, layout.page_size, count, layout.first_txid, frames)
    table = raw[SEGMENT_HEADER_SIZE : layout.numbers_offset].view(_TRANSACTION_FIELDS)
    table["commit_time_us"] = commit_times_us
    table["db_size_pages"] = db_sizes_pages
    table["frame_count"] = frame_counts
    if int(table["frame_count"].sum(dtype=np.uint64)) != frames:
        raise ValueError(f"transactions hold other than the layout's {plural(frames, 'frame')}")
    raw[layout.numbers_offset : layout.pages_offset].view(">u4")[:] = page_numbers


def _page_numbers(values: Sequence[int]) -> array:
    try:
        numbers = array("I", values)
    except (OverflowError, TypeError) as exc:
        raise ValueError(f"page numbers must be integers in 1..{MAX_PAGE_NUMBER}") from exc
    if 0 in numbers or MAX_U32 in numbers:
        raise ValueError(f"page numbers must be integers in 1..{MAX_PAGE_NUMBER}")
    return numbers


def encode_segment(
    page_size: int, first_txid: int, transactions: Iterable[TransactionFrames]
) -> bytes:
    """The payload of a segment holding *transactions*, txids from *first_txid*.

    Raises ``ValueError`` for arguments that cannot be encoded (a caller bug).
    """
    if not is_valid_page_size(page_size):
        raise ValueError(f"invalid page size {page_size!r}")
    commit_times = array("q")
    db_sizes = array("I")
    frame_counts = array("I")
    numbers = array("I")
    images: list[bytes | bytearray | memoryview] = []
    for transaction in transactions:
        frame_count = len(transaction.page_numbers)
        if frame_count < 1:
            raise ValueError("a transaction has at least one frame (its commit frame)")
        if len(transaction.pages) != frame_count * page_size:
            raise ValueError(
                f"{plural(frame_count, 'frame')} need {frame_count * page_size} bytes of pages, "
                f"got {len(transaction.pages)}"
            )
        if not 1 <= transaction.db_size_pages <= MAX_PAGE_NUMBER:
            raise ValueError(f"invalid db size {transaction.db_size_pages!r} pages")
        try:
            commit_times.append(transaction.commit_time_us)
        except (OverflowError, TypeError) as exc:
            raise ValueError(f"invalid commit time {transaction.commit_time_us!r}") from exc
        db_sizes.append(transaction.db_size_pages)
        frame_counts.append(frame_count)
        numbers.extend(_page_numbers(transaction.page_numbers))
        images.append(transaction.pages)
    layout = SegmentLayout(page_size, len(commit_times), first_txid, len(numbers))
    tables = bytearray(layout.pages_offset)
    write_segment_tables(tables, layout, commit_times, db_sizes, frame_counts, numbers)
    return b"".join((tables, *images))


def _malformed(problem: str) -> ReplicaFormatError:
    return ReplicaFormatError(f"malformed segment: {problem}")


def _read_layout(view: memoryview) -> SegmentLayout:
    if len(view) < SEGMENT_HEADER_SIZE:
        raise _malformed(f"{len(view)} bytes is shorter than the segment header")
    layout = SegmentLayout(*_HEADER.unpack_from(view))
    if not is_valid_page_size(layout.page_size):
        raise _malformed(f"invalid page size {layout.page_size}")
    if layout.transaction_count < 1:
        raise _malformed("no transactions")
    if layout.frame_count < layout.transaction_count:
        raise _malformed(
            f"{plural(layout.frame_count, 'frame')} for "
            f"{plural(layout.transaction_count, 'transaction')}"
        )
    if layout.first_txid + layout.transaction_count - 1 > MAX_TXID:
        raise _malformed(f"txids from {layout.first_txid} overflow")
    # Python ints cannot overflow, so the expected size is exact whatever the counts.
    if layout.total_size != len(view):
        raise _malformed(
            f"counts say {layout.total_size} bytes "
            f"({plural(layout.transaction_count, 'transaction')}, "
            f"{plural(layout.frame_count, 'frame')}), "
            f"payload has {len(view)}"
        )
    return layout


def _u32_array(view: memoryview) -> array:
    values = array("I")
    values.frombytes(view)
    if _NATIVE_LITTLE_ENDIAN:
        values.byteswap()
    return values


def decode_segment(payload: bytes | bytearray | memoryview) -> Segment:
    """Parse and validate a segment payload; page images are not copied."""
    view = memoryview(payload).cast("B")
    layout = _read_layout(view)
    count = layout.transaction_count
    commit_times = array("q", bytes(8 * count))
    db_sizes = array("I", bytes(4 * count))
    frame_counts = array("I", bytes(4 * count))
    table = view[SEGMENT_HEADER_SIZE : layout.numbers_offset]
    for i, (commit_time, db_size, frames) in enumerate(_TRANSACTION.iter_unpack(table)):
        if not 1 <= db_size <= MAX_PAGE_NUMBER:
            raise _malformed(
                f"transaction {layout.first_txid + i} has db size {plural(db_size, 'page')} "
                f"(a database has 1..{MAX_PAGE_NUMBER})"
            )
        if frames < 1:
            raise _malformed(f"transaction {layout.first_txid + i} has no frames")
        commit_times[i] = commit_time
        db_sizes[i] = db_size
        frame_counts[i] = frames
    if sum(frame_counts) != layout.frame_count:
        raise _malformed(
            f"transactions hold {plural(sum(frame_counts), 'frame')}, "
            f"header says {layout.frame_count}"
        )
    page_numbers = _u32_array(view[layout.numbers_offset : layout.pages_offset])
    if 0 in page_numbers:
        raise _malformed("page number 0")
    if MAX_U32 in page_numbers:  # the only u32 above MAX_PAGE_NUMBER
        raise _malformed(f"page number {MAX_U32} (SQLite's largest is {MAX_PAGE_NUMBER})")
    return Segment(
        page_size=layout.page_size,
        first_txid=layout.first_txid,
        commit_times_us=commit_times,
        db_sizes_pages=db_sizes,
        frame_counts=frame_counts,
        page_numbers=page_numbers,
        pages=view[layout.pages_offset :],
    )


def concat_segments(payloads: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Merge consecutive segment payloads into one (same page size, contiguous txids).

    Each input is fully validated; the result equals encoding all their
    transactions in one segment.
    """
    if not payloads:
        raise ValueError("nothing to concatenate")
    segments = [decode_segment(payload) for payload in payloads]  # no page copies
    first = segments[0]
    expected_txid = first.first_txid
    for segment in segments:
        if segment.page_size != first.page_size:
            raise ReplicaFormatError(
                f"cannot concatenate segments of page size {first.page_size} and "
                f"{segment.page_size}"
            )
        if segment.first_txid != expected_txid:
            raise ReplicaFormatError(
                f"cannot concatenate segments: expected txid {expected_txid}, "
                f"got {segment.first_txid}"
            )
        expected_txid += segment.transaction_count
    commit_times, db_sizes, frame_counts, numbers = array("q"), array("I"), array("I"), array("I")
    for segment in segments:
        commit_times.extend(segment.commit_times_us)
        db_sizes.extend(segment.db_sizes_pages)
        frame_counts.extend(segment.frame_counts)
        numbers.extend(segment.page_numbers)
    layout = SegmentLayout(first.page_size, len(commit_times), first.first_txid, len(numbers))
    tables = bytearray(layout.pages_offset)
    write_segment_tables(tables, layout, commit_times, db_sizes, frame_counts, numbers)
    return b"".join((tables, *(segment.pages for segment in segments)))
