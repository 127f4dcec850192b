"""WAL header and frame header: byte layout, parse and encode.

A SQLite WAL file is a 32-byte WAL header followed by frames. A frame is a
24-byte frame header followed by one page of ``page_size`` bytes, so frame
``i`` (0-based) starts at byte ``32 + i * (24 + page_size)`` (``frame_offset``).
The rest of litetool computes no offset into a WAL itself: the helpers here
(``frame_offset``, ``page_offset``, ``frames_between``, ``frame_checksum_offset``,
read sizes in whole frames, and ``frame_grid`` for numpy views of frames) say
where everything is.

Every integer in both headers is an unsigned 32-bit **big-endian** value,
whatever the magic says. The magic only selects the byte order of the 32-bit
words that the *checksum* reads (see ``litetool.wal.checksum``).

WAL header (32 bytes)::

    offset  size  field
         0     4  magic: 0x377f0682 = checksum words little-endian,
                         0x377f0683 = checksum words big-endian
         4     4  format version, always 3007000
         8     4  page size in bytes: a power of two, 512 .. 65536
        12     4  checkpoint sequence number
        16     4  salt1: incremented at every WAL restart
        20     4  salt2: a fresh random value at every WAL restart
        24     4  checksum1 \\ checksum of bytes 0..24 of this header,
        28     4  checksum2 /  starting from state (0, 0)

Frame header (24 bytes)::

    offset  size  field
         0     4  page number (1-based; 0 never appears in a valid frame)
         4     4  db size after commit, in pages: non-zero marks a commit
                  frame (the last frame of a transaction), 0 otherwise
         8     4  salt1 \\ copies of the WAL header's salts; a frame whose
        12     4  salt2 /  salts differ belongs to an older WAL generation
        16     4  checksum1 \\ running checksum over frame header bytes 0..8
        20     4  checksum2 /  and the page, seeded with the previous frame's
                               checksum (the WAL header's for frame 1)

The parse functions read the fields as they are and do not judge salts or
checksums: that is the reader's job (``litetool.wal.reader``), because a
break there is the normal end of the valid WAL, not a format error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litetool.errors import WalFormatError
from litetool.wal.checksum import ByteOrder, ChecksumState, checksum_reference

if TYPE_CHECKING:
    import mmap

    import numpy as np

WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
WAL_FORMAT_VERSION = 3007000
MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 65536
#: Every page size SQLite can use, smallest first.
PAGE_SIZES: tuple[int, ...] = tuple(1 << shift for shift in range(9, 17))

# The checksummed part of the WAL header: everything before its checksum.
_WAL_HEADER_CHECKSUMMED_SIZE = 24
_WAL_HEADER = struct.Struct(">8I")
_FRAME_HEADER = struct.Struct(">6I")
#: Where a frame header holds its copy of the WAL header's salts.
FRAME_SALTS_OFFSET = 8
#: Where a frame header holds its running checksum (8 bytes).
FRAME_CHECKSUM_OFFSET = 16


def is_valid_page_size(page_size: int) -> bool:
    """True for a power of two from 512 to 65536 (the sizes SQLite allows)."""
    return MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE and page_size & (page_size - 1) == 0


def frame_size(page_size: int) -> int:
    """Bytes per frame: the frame header plus one page."""
    return FRAME_HEADER_SIZE + page_size


def frames_between(start: int, end: int, page_size: int) -> int:
    """Whole frames from WAL offset ``start`` to ``end`` (0 when ``end`` is not past it)."""
    return max(0, end - start) // frame_size(page_size)


def frame_offset(index: int, page_size: int, start: int = WAL_HEADER_SIZE) -> int:
    """Where frame ``index`` (0-based) begins when frame 0 begins at ``start``
    (by default the first frame of a WAL, just past its header)."""
    return start + index * frame_size(page_size)


def page_offset(frame_at: int) -> int:
    """Where the page of the frame that begins at ``frame_at`` begins."""
    return frame_at + FRAME_HEADER_SIZE


def frame_checksum_offset(frame_end: int, page_size: int) -> int:
    """Where the frame that ends at ``frame_end`` holds its running checksum
    (8 bytes: ``checksum_of`` reads them)."""
    return frame_end - frame_size(page_size) + FRAME_CHECKSUM_OFFSET


def whole_frames(length: int, page_size: int) -> int:
    """``length`` bytes rounded down to whole frames (0 when not even one fits)."""
    return length // frame_size(page_size) * frame_size(page_size)


def frames_per_read(budget: int, page_size: int) -> int:
    """How many frames to read at a time for reads of about ``budget`` bytes
    (at least one, however large the page)."""
    return max(1, budget // frame_size(page_size))


def frames_read_size(budget: int, page_size: int) -> int:
    """A read size of whole frames of about ``budget`` bytes (at least one frame)."""
    return frames_per_read(budget, page_size) * frame_size(page_size)


def raw_salts(raw_header: bytes | bytearray | memoryview) -> bytes:
    """The salts of a raw WAL header, as its 8 bytes (bytes 16..24): every frame
    header and the -shm wal-index copy them as they are."""
    return bytes(raw_header[16:24])


def _two_words(raw: bytes | bytearray | memoryview) -> tuple[int, int]:
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")


def salts_of(raw: bytes | bytearray | memoryview) -> tuple[int, int]:
    """The two salts in 8 raw salt bytes (``raw_salts``)."""
    return _two_words(raw)


def checksum_of(raw: bytes | bytearray | memoryview) -> ChecksumState:
    """The running checksum in the 8 bytes a frame header holds at
    ``FRAME_CHECKSUM_OFFSET``."""
    return _two_words(raw)


def frame_grid(
    buf: bytes | bytearray | memoryview | mmap.mmap,
    page_size: int,
    count: int | None = None,
    offset: int = 0,
) -> np.ndarray:
    """The ``count`` frames at ``buf[offset:]`` (by default every whole frame there)
    as a ``(count, frame size)`` numpy array of bytes, a view, not a copy: row
    ``i`` is frame ``i``, its header in the first ``FRAME_HEADER_SIZE`` columns
    and its page after (``frame_parts``). Imports numpy."""
    import numpy as np

    size = frame_size(page_size)
    if count is None:
        count = (len(buf) - offset) // size
    grid = np.frombuffer(buf, dtype=np.uint8, count=count * size, offset=offset)
    return grid.reshape(count, size)


def frame_parts(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame headers and the pages of a ``frame_grid``, as views of it."""
    return grid[:, :FRAME_HEADER_SIZE], grid[:, FRAME_HEADER_SIZE:]


def grid_page_numbers(grid: np.ndarray) -> np.ndarray:
    """The page number of each frame of a ``frame_grid``, in order (a copy; the
    values are big-endian 32-bit integers, as numpy reads them)."""
    return grid[:, :4].copy().view(">u4").ravel()


def frame_page_numbers(buf: bytes | bytearray | memoryview, page_size: int) -> np.ndarray:
    """The page number of each whole frame at the start of ``buf``, in order (a
    partial frame at the end is left out). Imports numpy."""
    return grid_page_numbers(frame_grid(buf, page_size))


def raw_page_size(raw_header: bytes | bytearray | memoryview) -> int:
    """The page size field of a raw WAL header (bytes 8..12), unchecked: for a
    header that was checked when it was read."""
    return int.from_bytes(raw_header[8:12], "big")


@dataclass(frozen=True, slots=True)
class WalHeader:
    """The 32-byte WAL header, field by field (see the module docstring)."""

    byte_order: ByteOrder
    format_version: int
    page_size: int
    checkpoint_seq: int
    salt1: int
    salt2: int
    checksum1: int
    checksum2: int

    @property
    def magic(self) -> int:
        return self.byte_order.magic

    @property
    def salts(self) -> tuple[int, int]:
        return (self.salt1, self.salt2)

    @property
    def checksum(self) -> ChecksumState:
        """The stored header checksum: the seed of frame 1's checksum."""
        return (self.checksum1, self.checksum2)

    @property
    def checksum_is_valid(self) -> bool:
        """True when the stored checksum matches bytes 0..24 of the header.

        SQLite treats a WAL whose header checksum fails as empty.
        """
        covered = encode_wal_header(self)[:_WAL_HEADER_CHECKSUMMED_SIZE]
        return checksum_reference(covered, byte_order=self.byte_order) == self.checksum


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The 24-byte frame header, field by field (see the module docstring)."""

    page_number: int
    db_size_after_commit: int
    salt1: int
    salt2: int
    checksum1: int
    checksum2: int

    @property
    def is_commit(self) -> bool:
        """True for the last frame of a transaction."""
        return self.db_size_after_commit != 0

    @property
    def salts(self) -> tuple[int, int]:
        return (self.salt1, self.salt2)

    @property
    def checksum(self) -> ChecksumState:
        return (self.checksum1, self.checksum2)


def new_wal_header(
    *,
    page_size: int,
    salts: tuple[int, int],
    checkpoint_seq: int = 0,
    byte_order: ByteOrder = ByteOrder.LITTLE,
) -> WalHeader:
    """A WAL header for these fields, with its checksum computed.

    Raises ValueError for a page size SQLite cannot use or a field that does
    not fit in 32 bits.
    """
    if not is_valid_page_size(page_size):
        raise ValueError(f"page size {page_size} is not a power of two from 512 to 65536")
    unsigned = (checkpoint_seq, *salts)
    if len(salts) != 2 or any(not 0 <= value < 1 << 32 for value in unsigned):
        raise ValueError("checkpoint_seq and both salts must be unsigned 32-bit integers")
    covered = struct.pack(
        ">6I", byte_order.magic, WAL_FORMAT_VERSION, page_size, checkpoint_seq, *salts
    )
    checksum = checksum_reference(covered, byte_order=byte_order)
    return WalHeader(byte_order, WAL_FORMAT_VERSION, page_size, checkpoint_seq, *salts, *checksum)


def check_wal_header_prefix(data: bytes | bytearray | memoryview) -> None:
    """Raise WalFormatError if the complete fields in ``data`` rule out a WAL header.

    ``data`` is the start of a WAL, possibly shorter than a header (a WAL
    being created): magic, format version and page size are checked as far
    as they are present, and the message names the byte offset of the field.
    """
    present = min(len(data), 12) // 4
    fields = struct.unpack_from(f">{present}I", data, 0)
    if present >= 1 and ByteOrder.from_magic(fields[0]) is None:
        raise WalFormatError(f"bad WAL magic 0x{fields[0]:08x} at byte offset 0")
    if present >= 2 and fields[1] != WAL_FORMAT_VERSION:
        raise WalFormatError(
            f"unsupported WAL format version {fields[1]} at byte offset 4"
            f" (expected {WAL_FORMAT_VERSION})"
        )
    if present >= 3 and not is_valid_page_size(fields[2]):
        raise WalFormatError(f"impossible WAL page size {fields[2]} at byte offset 8")


def parse_wal_header(data: bytes | bytearray | memoryview) -> WalHeader:
    """Parse the WAL header at the start of ``data`` (at least 32 bytes).

    Raises WalFormatError, naming the byte offset, for a bad magic, an
    unsupported format version or a page size SQLite cannot use, and for
    fewer than 32 bytes. Does not check the header checksum: see
    ``WalHeader.checksum_is_valid``.
    """
    check_wal_header_prefix(data)
    if len(data) < WAL_HEADER_SIZE:
        raise WalFormatError(
            f"truncated WAL header: {len(data)} bytes at byte offset 0, need {WAL_HEADER_SIZE}"
        )
    magic, *fields = _WAL_HEADER.unpack_from(data, 0)
    byte_order = ByteOrder.from_magic(magic)
    assert byte_order is not None  # checked above
    return WalHeader(byte_order, *fields)


def encode_wal_header(header: WalHeader) -> bytes:
    """The 32 bytes of ``header``, fields written exactly as given."""
    return _WAL_HEADER.pack(
        header.magic,
        header.format_version,
        header.page_size,
        header.checkpoint_seq,
        header.salt1,
        header.salt2,
        header.checksum1,
        header.checksum2,
    )


def parse_frame_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    """Parse the frame header at ``data[offset:offset + 24]``.

    Raises ValueError when fewer than 24 bytes are there (a caller bug: the
    reader never parses a partial frame).
    """
    if offset < 0 or len(data) - offset < FRAME_HEADER_SIZE:
        raise ValueError(f"no complete frame header at byte offset {offset}")
    return FrameHeader(*_FRAME_HEADER.unpack_from(data, offset))


def encode_frame_header(header: FrameHeader) -> bytes:
    """The 24 bytes of ``header``, fields written exactly as given."""
    return _FRAME_HEADER.pack(
        header.page_number,
        header.db_size_after_commit,
        header.salt1,
        header.salt2,
        header.checksum1,
        header.checksum2,
    )
