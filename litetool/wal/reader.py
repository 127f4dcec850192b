"""Reading a WAL: the valid frames, grouped into transactions.

Validity (SQLite's own rules, as in its WAL recovery). Starting at a frame
boundary with the running checksum of the frame before it, frames are taken
one after another until the first one that breaks a rule:

1. the whole frame (24 + page_size bytes) is there; otherwise the read stops
   with PARTIAL_FRAME, or END_OF_DATA when not a single byte is left;
2. its salts equal the WAL header's: otherwise SALT_MISMATCH (typically the
   frame is left over from before the WAL was restarted);
3. its page number is not 0: otherwise INVALID_PAGE_NUMBER;
4. its stored checksum equals the running checksum continued over frame
   header bytes 0..8 and the page: otherwise CHECKSUM_MISMATCH.

Such a stop is the normal end of the valid WAL, never an error. Nothing past
the first invalid frame is looked at, even if it would validate.

A **transaction** is the valid frames up to and including a commit frame
(db size after commit != 0). Valid frames after the last commit frame are
not a transaction yet: the result counts them as uncommitted, and its
``end_offset`` and ``checksum_state`` describe the end of the last committed
transaction, which is where the next read resumes once more bytes are there.

Offsets are byte offsets into the buffer the caller passed. To resume in
the middle of a WAL file, pass a buffer that holds the file from some frame
boundary on, with ``start_offset`` at that boundary, the checksum there and
the WAL header's salts; add the buffer's file offset to the offsets back.

Two implementations return identical results: ``read_transactions`` (numpy,
batched, for the engine) and ``read_transactions_reference`` (one frame at a
time in plain Python, for tests and as the readable statement of the rules).
Neither copies pages: a ``Transaction`` holds offsets, and ``iter_pages``
gives memoryviews into the caller's buffer.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from litetool.wal.checksum import ByteOrder, ChecksumState, checksum_reference
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    WAL_HEADER_SIZE,
    WalHeader,
    check_wal_header_prefix,
    is_valid_page_size,
    parse_frame_header,
    parse_wal_header,
)

Buffer = bytes | bytearray | memoryview

# Frames validated per numpy batch: big enough to amortise call overhead,
# small enough that a break early in a large buffer stops the work early.
_BATCH_BYTES = 4 << 20


class StopReason(enum.Enum):
    """Why the valid WAL ended where it did (see the module docstring)."""

    END_OF_DATA = "end_of_data"
    PARTIAL_FRAME = "partial_frame"
    SALT_MISMATCH = "salt_mismatch"
    INVALID_PAGE_NUMBER = "invalid_page_number"
    CHECKSUM_MISMATCH = "checksum_mismatch"


class Transaction(NamedTuple):
    """One committed transaction: consecutive frames ending in a commit frame.

    ``page_numbers[i]`` is the page in the frame at ``start_offset + i *
    frame_size``. A page may appear more than once; the later frame wins.
    ``checksum`` is the running checksum after the commit frame.

    A NamedTuple rather than a frozen dataclass because one is built per
    commit on the engine's hot path, and it builds three times faster.
    """

    start_offset: int
    end_offset: int
    page_size: int
    page_numbers: tuple[int, ...]
    db_size_after_commit: int
    checksum: ChecksumState

    @property
    def frame_size(self) -> int:
        return FRAME_HEADER_SIZE + self.page_size

    @property
    def frame_count(self) -> int:
        return len(self.page_numbers)

    @property
    def frame_offsets(self) -> range:
        """Byte offset of each frame (its frame header) in the buffer."""
        return range(self.start_offset, self.end_offset, self.frame_size)

    def iter_pages(self, buf: Buffer) -> Iterator[tuple[int, memoryview]]:
        """(page number, page bytes as a memoryview into ``buf``) per frame, in order."""
        view = memoryview(buf)
        for page_number, offset in zip(self.page_numbers, self.frame_offsets, strict=True):
            start = offset + FRAME_HEADER_SIZE
            yield page_number, view[start : start + self.page_size]


@dataclass(frozen=True, slots=True)
class WalReadResult:
    """What a read found.

    - ``transactions``: the committed transactions, in WAL order.
    - ``end_offset``: byte offset just past the last committed transaction
      (the start offset when there is none): where the next read resumes.
    - ``checksum_state``: the running checksum at ``end_offset``.
    - ``stop_reason``: why the read stopped.
    - ``stop_offset``: byte offset of the frame that stopped the read (the
      length of the buffer for END_OF_DATA).
    - ``uncommitted_frame_count``: valid frames between ``end_offset`` and
      ``stop_offset`` that no commit frame closes (yet).
    """

    transactions: tuple[Transaction, ...]
    end_offset: int
    checksum_state: ChecksumState
    stop_reason: StopReason
    stop_offset: int
    uncommitted_frame_count: int


@dataclass(frozen=True, slots=True)
class DecodedWal:
    """A whole WAL file: its header (None when fewer than 32 bytes) and what was read."""

    header: WalHeader | None
    result: WalReadResult

    @property
    def transactions(self) -> tuple[Transaction, ...]:
        return self.result.transactions


Reader = Callable[..., WalReadResult]
# Builds a Transaction from one tuple of its fields, without a Python-level call.
_new_transaction = functools.partial(tuple.__new__, Transaction)


def read_transactions(
    buf: Buffer,
    *,
    start_offset: int,
    page_size: int,
    salts: tuple[int, int],
    checksum_state: ChecksumState,
    byte_order: ByteOrder,
) -> WalReadResult:
    """Read the valid frames of ``buf`` from ``start_offset`` on, with numpy.

    Python work is per batch and per committed transaction, not per frame:
    on the 2-core development machine a call costs about 0.1 ms whatever its
    size, plus about 0.35 ms per MiB of frames and about 1 us per committed
    transaction, so callers should read in batches. Raises ValueError for
    arguments no WAL header could give (a page size SQLite cannot use, an
    offset outside the buffer).
    """
    import numpy as np

    from litetool.wal import checksum_fast

    view, frame_count, partial = _frame_span(buf, start_offset, page_size)
    size = FRAME_HEADER_SIZE + page_size
    # Every numpy call costs ~2 us on small arrays, so this counts calls as
    # well as bytes: a read of one new frame is ~20 calls, a read of 64 MiB
    # is the same plus one verification per batch.
    frames = checksum_fast.frame_words(view, start_offset, frame_count, page_size, ByteOrder.BIG)
    # (F x 6) copy of the frame header fields: page number, db size, salts, checksum.
    fields = frames[:, :6].astype(np.uint32)
    broken = (fields[:, 2:4] != np.array(salts, dtype=np.uint32)).any(axis=1)
    broken |= fields[:, 0] == 0
    header_limit = int(broken.argmax()) if broken.any() else frame_count

    if byte_order is ByteOrder.LITTLE:
        frames = frames.view(np.dtype("<u4"))  # the same bytes as little-endian words
    valid_count = header_limit
    state = checksum_state
    batch = max(1, _BATCH_BYTES // size)
    for first in range(0, header_limit, batch):
        last = min(first + batch, header_limit)
        ok = checksum_fast.verify_frame_words(
            frames[first:last], fields[first:last, 4:6], page_size, state
        )
        if not ok.all():
            valid_count = first + int(ok.argmin())
            break
        s0, s1 = fields[last - 1, 4:6].tolist()
        state = (s0, s1)

    if valid_count < header_limit:
        reason = StopReason.CHECKSUM_MISMATCH
    elif header_limit < frame_count:
        reason = _header_break_reason(fields[header_limit, :4].tolist(), salts)
    else:
        reason = StopReason.PARTIAL_FRAME if partial else StopReason.END_OF_DATA

    commits = np.flatnonzero(fields[:valid_count, 1])
    commit_rows = fields[commits].tolist()
    committed_count = commits[-1] + 1 if len(commit_rows) else 0
    return _assemble(
        start_offset=start_offset,
        page_size=page_size,
        page_numbers=fields[:committed_count, 0].tolist(),
        commit_indexes=commits.tolist(),
        db_sizes=[row[1] for row in commit_rows],
        checksums=[(row[4], row[5]) for row in commit_rows],
        valid_count=valid_count,
        incoming_state=checksum_state,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class CommitScan:
    """Where the committed transactions of ``scan_commits``'s buffer end.

    ``end_offset`` is just past the last commit frame (0 when there is
    none), ``checksum_state`` that frame's *stored* checksum, and
    ``db_size_after_commit`` its database size.
    """

    end_offset: int
    frame_count: int
    transaction_count: int
    checksum_state: ChecksumState
    db_size_after_commit: int


def scan_commits(
    buf: Buffer, *, page_size: int, salts: tuple[int, int], checksum_state: ChecksumState
) -> CommitScan | None:
    """The transactions in whole frames that SQLite has already declared committed.

    For frames below the ``mxFrame`` of a consistent wal-index header (the
    ``-shm``): SQLite wrote them whole before it published that header, and
    its own readers take them on the index's word, without checksums. This
    reads only the 24-byte frame headers (no page bytes): it returns None
    when a frame has other salts or page number 0, which no committed frame
    of this WAL has (the caller then uses ``read_transactions``).
    ``checksum_state`` is returned unchanged when there is no commit frame.
    """
    size = FRAME_HEADER_SIZE + page_size
    count = len(buf) // size
    if count == 0:
        return CommitScan(0, 0, 0, checksum_state, 0)
    if count <= _SCAN_IN_PYTHON_FRAMES:
        return _scan_commits_small(buf, count, size, salts, checksum_state)
    import numpy as np

    words = np.frombuffer(buf, dtype=">u4", count=count * size // 4).reshape(count, size // 4)
    fields = words[:, :6]
    if (fields[:, 2] != salts[0]).any() or (fields[:, 3] != salts[1]).any():
        return None
    if not fields[:, 0].all():
        return None
    commits = np.flatnonzero(fields[:, 1])
    if commits.size == 0:
        return CommitScan(0, 0, 0, checksum_state, 0)
    last = int(commits[-1])
    s0, s1, db_size = int(fields[last, 4]), int(fields[last, 5]), int(fields[last, 1])
    return CommitScan((last + 1) * size, last + 1, int(commits.size), (s0, s1), db_size)


# Up to this many frames, a loop over the headers beats numpy's per-call cost
# (an application committing one small transaction at a time).
_SCAN_IN_PYTHON_FRAMES = 8
_FRAME_FIELDS = struct.Struct(">6I")


def _scan_commits_small(
    buf: Buffer, count: int, size: int, salts: tuple[int, int], checksum_state: ChecksumState
) -> CommitScan | None:
    result = CommitScan(0, 0, 0, checksum_state, 0)
    commits = 0
    for index in range(count):
        page, db_size, salt1, salt2, s0, s1 = _FRAME_FIELDS.unpack_from(buf, index * size)
        if (salt1, salt2) != tuple(salts) or page == 0:
            return None
        if db_size:
            commits += 1
            result = CommitScan((index + 1) * size, index + 1, commits, (s0, s1), db_size)
    return result


def read_transactions_reference(
    buf: Buffer,
    *,
    start_offset: int,
    page_size: int,
    salts: tuple[int, int],
    checksum_state: ChecksumState,
    byte_order: ByteOrder,
) -> WalReadResult:
    """Same contract and result as ``read_transactions``, one frame at a time in Python."""
    view, frame_count, partial = _frame_span(buf, start_offset, page_size)
    size = FRAME_HEADER_SIZE + page_size
    salts = (salts[0], salts[1])
    state = checksum_state
    page_numbers: list[int] = []
    commit_indexes: list[int] = []
    db_sizes: list[int] = []
    checksums: list[ChecksumState] = []
    reason = StopReason.PARTIAL_FRAME if partial else StopReason.END_OF_DATA
    for index in range(frame_count):
        offset = start_offset + index * size
        header = parse_frame_header(view, offset)
        if header.salts != salts:
            reason = StopReason.SALT_MISMATCH
            break
        if header.page_number == 0:
            reason = StopReason.INVALID_PAGE_NUMBER
            break
        state = checksum_reference(view[offset : offset + 8], state, byte_order=byte_order)
        state = checksum_reference(
            view[offset + FRAME_HEADER_SIZE : offset + size], state, byte_order=byte_order
        )
        if state != header.checksum:
            reason = StopReason.CHECKSUM_MISMATCH
            break
        page_numbers.append(header.page_number)
        if header.is_commit:
            commit_indexes.append(index)
            db_sizes.append(header.db_size_after_commit)
            checksums.append(state)
    valid_count = len(page_numbers)
    return _assemble(
        start_offset=start_offset,
        page_size=page_size,
        page_numbers=page_numbers,
        commit_indexes=commit_indexes,
        db_sizes=db_sizes,
        checksums=checksums,
        valid_count=valid_count,
        incoming_state=checksum_state,
        reason=reason,
    )


def decode_wal(data: Buffer, *, reader: Reader = read_transactions) -> DecodedWal:
    """Parse the WAL header of a whole WAL file and read all its valid frames.

    - Fewer than 32 bytes (a WAL being created, or an empty WAL after a
      TRUNCATE checkpoint): no header, no transactions, stopped at offset 0.
    - A header checksum that fails: SQLite treats the WAL as empty, so no
      transactions, CHECKSUM_MISMATCH at offset 0, end offset 0.

    Raises WalFormatError only when the bytes cannot be a WAL at all: bad
    magic, unsupported format version, impossible page size. ``reader``
    selects the implementation (``read_transactions_reference`` in tests).
    """
    view = _byte_view(data)
    if len(view) < WAL_HEADER_SIZE:
        check_wal_header_prefix(view)
        reason = StopReason.PARTIAL_FRAME if len(view) else StopReason.END_OF_DATA
        return DecodedWal(None, _nothing_valid(reason))
    header = parse_wal_header(view)
    if not header.checksum_is_valid:
        return DecodedWal(header, _nothing_valid(StopReason.CHECKSUM_MISMATCH))
    result = reader(
        view,
        start_offset=WAL_HEADER_SIZE,
        page_size=header.page_size,
        salts=header.salts,
        checksum_state=header.checksum,
        byte_order=header.byte_order,
    )
    return DecodedWal(header, result)


def _nothing_valid(reason: StopReason) -> WalReadResult:
    return WalReadResult((), 0, (0, 0), reason, 0, 0)


def _byte_view(buf: Buffer) -> memoryview:
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _frame_span(buf: Buffer, start_offset: int, page_size: int) -> tuple[memoryview, int, bool]:
    """(byte view, whole frames from start_offset, whether a partial frame follows)."""
    if not is_valid_page_size(page_size):
        raise ValueError(f"page size {page_size} is not a power of two from 512 to 65536")
    view = _byte_view(buf)
    if not 0 <= start_offset <= len(view):
        raise ValueError(f"start offset {start_offset} is outside the buffer of {len(view)} bytes")
    frame_count, remainder = divmod(len(view) - start_offset, FRAME_HEADER_SIZE + page_size)
    return view, frame_count, remainder != 0


def _header_break_reason(fields: list[int], salts: tuple[int, int]) -> StopReason:
    """Why a frame with these header fields (page number, db size, salt1, salt2) is invalid."""
    if (fields[2], fields[3]) != (salts[0], salts[1]):
        return StopReason.SALT_MISMATCH
    return StopReason.INVALID_PAGE_NUMBER


def _assemble(
    *,
    start_offset: int,
    page_size: int,
    page_numbers: list[int],
    commit_indexes: list[int],
    db_sizes: list[int],
    checksums: list[ChecksumState],
    valid_count: int,
    incoming_state: ChecksumState,
    reason: StopReason,
) -> WalReadResult:
    """Group valid frames into transactions: per-commit work only.

    Written as a pipeline of C-level iterators (map, zip, slice,
    tuple.__new__) because it runs once per commit on the engine's hot path:
    about 0.5 microseconds per transaction instead of 2 for a plain loop.
    """
    size = FRAME_HEADER_SIZE + page_size
    ends = [commit + 1 for commit in commit_indexes]
    firsts = [0, *ends[:-1]]
    page_number_tuples = map(tuple(page_numbers).__getitem__, map(slice, firsts, ends))
    transactions = tuple(
        map(
            _new_transaction,
            zip(
                [start_offset + first * size for first in firsts],
                [start_offset + end * size for end in ends],
                repeat(page_size),
                page_number_tuples,
                db_sizes,
                checksums,
                strict=False,  # repeat() is endless; the lists have one item per commit
            ),
        )
    )
    first = ends[-1] if ends else 0
    return WalReadResult(
        transactions=transactions,
        end_offset=start_offset + first * size,
        checksum_state=checksums[-1] if checksums else incoming_state,
        stop_reason=reason,
        stop_offset=start_offset + valid_count * size,
        uncommitted_frame_count=valid_count - first,
    )
