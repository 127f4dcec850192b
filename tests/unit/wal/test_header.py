"""WAL header and frame header: layout, round trips and format errors."""

import struct

import pytest

from litetool.errors import WalFormatError
from litetool.wal import (
    PAGE_SIZES,
    WAL_FORMAT_VERSION,
    WAL_MAGIC_BIG_ENDIAN,
    WAL_MAGIC_LITTLE_ENDIAN,
    ByteOrder,
    FrameHeader,
    WalHeader,
    check_wal_header_prefix,
    checksum_reference,
    encode_frame_header,
    encode_wal_header,
    is_valid_page_size,
    new_wal_header,
    parse_frame_header,
    parse_wal_header,
)


def header_bytes(
    magic: int = WAL_MAGIC_LITTLE_ENDIAN, version: int = WAL_FORMAT_VERSION, page_size: int = 4096
) -> bytes:
    return struct.pack(">8I", magic, version, page_size, 7, 11, 13, 0, 0)


def test_page_sizes_are_the_powers_of_two_sqlite_allows() -> None:
    assert PAGE_SIZES == (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
    assert all(is_valid_page_size(size) for size in PAGE_SIZES)
    assert not any(is_valid_page_size(size) for size in (0, 1, 256, 1000, 3072, 131072))


@pytest.mark.parametrize("order", list(ByteOrder))
def test_new_header_layout_is_big_endian_fields_with_checksum(order: ByteOrder) -> None:
    header = new_wal_header(
        page_size=65536, salts=(0xDEADBEEF, 5), checkpoint_seq=9, byte_order=order
    )
    data = encode_wal_header(header)
    assert len(data) == 32
    fields = struct.unpack(">8I", data)
    assert fields[:6] == (order.magic, 3007000, 65536, 9, 0xDEADBEEF, 5)
    assert fields[6:] == checksum_reference(data[:24], byte_order=order)
    assert parse_wal_header(data) == header
    assert header.checksum_is_valid
    assert header.salts == (0xDEADBEEF, 5)


def test_magic_selects_byte_order() -> None:
    assert ByteOrder.from_magic(0x377F0682) is ByteOrder.LITTLE
    assert ByteOrder.from_magic(0x377F0683) is ByteOrder.BIG
    assert ByteOrder.from_magic(0x377F0684) is None
    assert parse_wal_header(header_bytes(WAL_MAGIC_BIG_ENDIAN)).byte_order is ByteOrder.BIG


def test_header_fields_are_kept_as_stored() -> None:
    header = parse_wal_header(header_bytes())
    assert (header.page_size, header.checkpoint_seq, header.salts) == (4096, 7, (11, 13))
    assert header.checksum == (0, 0)
    assert not header.checksum_is_valid  # parse does not judge; the reader does
    assert encode_wal_header(header) == header_bytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (header_bytes(magic=0x377F0681), "bad WAL magic 0x377f0681 at byte offset 0"),
        (header_bytes(version=3007001), "unsupported WAL format version 3007001 at byte offset 4"),
        (header_bytes(page_size=1000), "impossible WAL page size 1000 at byte offset 8"),
        (header_bytes(page_size=131072), "impossible WAL page size 131072 at byte offset 8"),
        (header_bytes(page_size=256), "impossible WAL page size 256 at byte offset 8"),
        (header_bytes()[:31], "truncated WAL header: 31 bytes at byte offset 0"),
        (b"SQLite format 3\x00" + bytes(16), "bad WAL magic 0x53514c69 at byte offset 0"),
    ],
)
def test_bytes_that_cannot_be_a_wal_raise_with_offset(data: bytes, message: str) -> None:
    with pytest.raises(WalFormatError, match=message):
        parse_wal_header(data)


def test_header_prefix_checks_only_the_fields_present() -> None:
    good = header_bytes()
    for length in range(33):
        check_wal_header_prefix(good[:length])  # never raises on a valid prefix
    check_wal_header_prefix(header_bytes(page_size=3)[:8])  # page size not there yet
    with pytest.raises(WalFormatError, match="byte offset 8"):
        check_wal_header_prefix(header_bytes(page_size=3)[:12])
    with pytest.raises(WalFormatError, match="byte offset 0"):
        check_wal_header_prefix(b"\x00\x00\x00\x00")


def test_new_header_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="page size"):
        new_wal_header(page_size=1000, salts=(1, 2))
    with pytest.raises(ValueError, match="32-bit"):
        new_wal_header(page_size=512, salts=(1 << 32, 2))


def test_frame_header_layout_and_round_trip() -> None:
    header = FrameHeader(
        page_number=3, db_size_after_commit=10, salt1=1, salt2=2, checksum1=0xFFFFFFFF, checksum2=4
    )
    data = encode_frame_header(header)
    assert data == struct.pack(">6I", 3, 10, 1, 2, 0xFFFFFFFF, 4)
    assert parse_frame_header(data) == header
    assert parse_frame_header(b"xx" + data, 2) == header
    assert header.is_commit
    assert header.salts == (1, 2) and header.checksum == (0xFFFFFFFF, 4)
    assert not FrameHeader(3, 0, 1, 2, 0, 0).is_commit


def test_partial_frame_header_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="byte offset 4"):
        parse_frame_header(bytes(27), 4)


def test_wal_header_is_a_frozen_value() -> None:
    header = new_wal_header(page_size=512, salts=(1, 2))
    with pytest.raises(AttributeError):
        header.page_size = 1024  # type: ignore[misc]
    assert isinstance(header, WalHeader)


def test_frames_between_counts_whole_frames_only():
    from litetool.wal.header import frames_between

    frame = 24 + 4096
    assert frames_between(32, 32 + 3 * frame, 4096) == 3
    assert frames_between(32, 32 + 3 * frame - 1, 4096) == 2
    assert frames_between(32 + frame, 32, 4096) == 0  # end not past start


def test_raw_salts_page_size_and_frame_salts_offset_follow_the_layout():
    from litetool.wal.header import FRAME_SALTS_OFFSET, raw_page_size, raw_salts, salts_of

    header = new_wal_header(page_size=8192, salts=(0x01020304, 0xA0B0C0D0))
    raw = encode_wal_header(header)
    assert raw_salts(raw) == bytes.fromhex("01020304a0b0c0d0")
    assert salts_of(raw_salts(raw)) == header.salts
    assert raw_page_size(raw) == 8192
    frame = encode_frame_header(FrameHeader(5, 0, *header.salts, 1, 2))
    assert frame[FRAME_SALTS_OFFSET : FRAME_SALTS_OFFSET + 8] == raw_salts(raw)


def test_read_sizes_are_whole_frames_and_at_least_one():
    from litetool.wal.header import frames_per_read, frames_read_size, whole_frames

    frame = 24 + 4096
    assert whole_frames(3 * frame + 5, 4096) == 3 * frame
    assert whole_frames(frame - 1, 4096) == 0
    assert frames_per_read(10 * frame + 1, 4096) == 10
    assert frames_read_size(10 * frame + 1, 4096) == 10 * frame
    # a budget smaller than one frame still reads one frame
    assert frames_per_read(1000, 65536) == 1
    assert frames_read_size(1000, 65536) == 24 + 65536


def test_frame_offsets_follow_the_layout():
    from litetool.wal.header import frame_checksum_offset, frame_offset, page_offset

    frame = 24 + 1024
    assert frame_offset(0, 1024) == 32
    assert frame_offset(3, 1024) == 32 + 3 * frame
    assert frame_offset(2, 1024, start=100) == 100 + 2 * frame
    assert page_offset(32) == 56
    # the frame ending at frame_offset(1) is frame 0, its checksum at bytes 16..24
    assert frame_checksum_offset(frame_offset(1, 1024), 1024) == 32 + 16


def test_checksum_of_reads_two_big_endian_words():
    from litetool.wal.header import checksum_of

    assert checksum_of(bytes.fromhex("0000000100000002")) == (1, 2)
    frame = encode_frame_header(FrameHeader(5, 0, 7, 8, 0xDEADBEEF, 0x01020304))
    assert checksum_of(frame[16:24]) == (0xDEADBEEF, 0x01020304)
