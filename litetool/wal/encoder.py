"""Building WAL bytes: the inverse of the reader, for tests, benchmarks and restore.

The output is laid out exactly as SQLite writes a WAL (byte layout in
``litetool.wal.header``, checksum in ``litetool.wal.checksum``): a header
with its checksum, then frames whose checksums chain from it. Checksums are
computed with the batched numpy terms and a sequential fold, so numpy is
imported on first use.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from litetool.wal.checksum import ByteOrder, ChecksumState
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    encode_wal_header,
    is_valid_page_size,
    new_wal_header,
)

Buffer = bytes | bytearray | memoryview
#: One frame to encode: (page number, db size after commit or 0, page bytes).
FrameInput = tuple[int, int, Buffer]
#: One transaction to encode: ([(page number, page bytes), ...], db size after commit).
TransactionInput = tuple[Sequence[tuple[int, Buffer]], int]

_FRAME_FIELDS = struct.Struct(">4I")  # page number, db size, salt1, salt2
_FRAME_CHECKSUM = struct.Struct(">2I")
_FRAME_CHECKSUM_OFFSET = 16
_UINT32_LIMIT = 1 << 32


def encode_frames(
    frames: Sequence[FrameInput],
    *,
    page_size: int,
    salts: tuple[int, int],
    checksum_state: ChecksumState,
    byte_order: ByteOrder,
) -> tuple[bytes, ChecksumState]:
    """Frames continuing a WAL whose running checksum is ``checksum_state``.

    Returns the frame bytes and the running checksum after the last frame.
    Fields are written as given (a page number of 0 is allowed here, so tests
    can build frames that are invalid for that reason only). Raises
    ValueError for a page of the wrong size or a field beyond 32 bits.
    """
    from litetool.wal import checksum_fast

    if not is_valid_page_size(page_size):
        raise ValueError(f"page size {page_size} is not a power of two from 512 to 65536")
    size = FRAME_HEADER_SIZE + page_size
    out = bytearray(len(frames) * size)
    for index, (page_number, db_size_after_commit, page) in enumerate(frames):
        if len(page) != page_size:
            raise ValueError(f"frame {index}: page of {len(page)} bytes, expected {page_size}")
        fields = (page_number, db_size_after_commit, *salts)
        if len(fields) != 4 or any(not 0 <= value < _UINT32_LIMIT for value in fields):
            raise ValueError(f"frame {index}: fields must be unsigned 32-bit integers")
        offset = index * size
        _FRAME_FIELDS.pack_into(out, offset, *fields)
        out[offset + FRAME_HEADER_SIZE : offset + size] = page
    # The checksum terms ignore the (still zero) checksum fields, so one
    # batched pass over the assembled frames gives every frame's term.
    terms = checksum_fast.frame_terms(out, 0, len(frames), page_size, byte_order)
    states = checksum_fast.fold_frame_checksums(terms, page_size, checksum_state)
    for index, state in enumerate(states):
        _FRAME_CHECKSUM.pack_into(out, index * size + _FRAME_CHECKSUM_OFFSET, *state)
    return bytes(out), (states[-1] if states else checksum_state)


def encode_wal(
    transactions: Iterable[TransactionInput],
    *,
    page_size: int,
    salts: tuple[int, int],
    checkpoint_seq: int = 0,
    byte_order: ByteOrder = ByteOrder.LITTLE,
) -> bytes:
    """A whole WAL file: header, then the frames of each transaction in order.

    Each transaction is ``(pages, db_size_after_commit)`` with ``pages`` a
    non-empty sequence of ``(page_number, page_bytes)``; its last frame is the
    commit frame carrying ``db_size_after_commit``. A ``db_size_after_commit``
    of 0 writes no commit frame: those frames stay uncommitted (they join the
    next transaction, or trail the WAL as an unfinished one).

    Raises ValueError for an empty transaction, a page number of 0, a page of
    the wrong size, or a page size or field SQLite cannot represent.
    """
    header = new_wal_header(
        page_size=page_size, salts=salts, checkpoint_seq=checkpoint_seq, byte_order=byte_order
    )
    frames: list[FrameInput] = []
    for number, (pages, db_size_after_commit) in enumerate(transactions):
        if not pages:
            raise ValueError(f"transaction {number} has no pages")
        for page_number, _page in pages:
            if page_number == 0:
                raise ValueError(f"transaction {number}: page number 0 is not a page")
        last = len(pages) - 1
        frames.extend(
            (page_number, db_size_after_commit if index == last else 0, page)
            for index, (page_number, page) in enumerate(pages)
        )
    body, _state = encode_frames(
        frames,
        page_size=page_size,
        salts=header.salts,
        checksum_state=header.checksum,
        byte_order=byte_order,
    )
    return encode_wal_header(header) + body
