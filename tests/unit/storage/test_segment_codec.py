"""Segment payload codec (docs/FORMAT.md section 3)."""

import struct

import pytest

from litetool.errors import ReplicaFormatError
from litetool.storage import SegmentTransaction, concat_segments, decode_segment, encode_segment
from litetool.storage.format.segment import SegmentLayout, write_segment_tables


def _pages(*fills: int, page_size: int = 512) -> bytes:
    return b"".join(bytes([fill]) * page_size for fill in fills)


def _two_transactions(first_txid=5):
    return encode_segment(
        512,
        first_txid,
        [
            SegmentTransaction(1_000, 3, [1, 2], _pages(0xA1, 0xA2)),
            SegmentTransaction(2_000, 4, [4], _pages(0xB4)),
        ],
    )


def test_byte_layout():
    payload = _two_transactions()
    assert struct.unpack_from(">IIQI", payload) == (512, 2, 5, 3)
    assert struct.unpack_from(">qIIqII", payload, 20) == (1_000, 3, 2, 2_000, 4, 1)
    assert struct.unpack_from(">III", payload, 52) == (1, 2, 4)
    assert payload[64:] == _pages(0xA1, 0xA2, 0xB4)
    assert len(payload) == 20 + 16 * 2 + 4 * 3 + 3 * 512


def test_decode_gives_arrays_and_a_zero_copy_page_view():
    payload = _two_transactions()
    segment = decode_segment(payload)
    assert (segment.page_size, segment.first_txid, segment.last_txid) == (512, 5, 6)
    assert list(segment.commit_times_us) == [1_000, 2_000]
    assert list(segment.db_sizes_pages) == [3, 4]
    assert list(segment.frame_counts) == [2, 1]
    assert list(segment.page_numbers) == [1, 2, 4]
    assert segment.pages.obj is payload
    assert bytes(segment.page(2)) == _pages(0xB4)
    assert segment.frames_through(5) == 2
    assert segment.frames_through(6) == 3
    assert segment.commit_time_us(6) == 2_000
    assert segment.db_size_pages(5) == 3
    with pytest.raises(ValueError):
        segment.frames_through(7)
    with pytest.raises(IndexError):
        segment.page(3)


def test_the_writer_fills_all_but_the_pages_from_any_integer_columns():
    import numpy as np

    layout = SegmentLayout(512, 2, 5, 3)
    assert (layout.numbers_offset, layout.pages_offset, layout.total_size) == (52, 64, 64 + 1536)
    payload = bytearray(b"\xee" * layout.total_size)
    # Page numbers as the engine has them: big-endian, a strided column of frame headers.
    headers = np.zeros((3, 6), dtype=">u4")
    headers[:, 0] = [1, 2, 4]
    write_segment_tables(
        memoryview(payload), layout, np.array([1_000, 2_000]), [3, 4], [2, 1], headers[:, 0]
    )
    expected = _two_transactions()
    assert payload[: layout.pages_offset] == expected[: layout.pages_offset]
    assert payload[layout.pages_offset :] == b"\xee" * 1536  # the pages are the caller's


@pytest.mark.parametrize(
    "layout, columns, match",
    [
        (SegmentLayout(500, 1, 1, 1), ([1], [1], [1], [1]), "page size"),
        (SegmentLayout(512, 0, 1, 0), ([], [], [], []), "at least one transaction"),
        (SegmentLayout(512, 1, -1, 1), ([1], [1], [1], [1]), "out of range"),
        (SegmentLayout(512, 2, 2**63 - 1, 2), ([1, 1], [1, 1], [1, 1], [1, 1]), "out of range"),
        (SegmentLayout(512, 1, 1, 2**32), ([1], [1], [1], [1]), "do not fit one segment"),
        (SegmentLayout(512, 2, 1, 2), ([1], [1, 1], [1, 1], [1, 1]), "do not match a layout"),
        (SegmentLayout(512, 1, 1, 2), ([1], [1], [2], [1]), "do not match a layout"),
        (SegmentLayout(512, 2, 1, 3), ([1, 1], [1, 1], [1, 1], [1, 1, 1]), "other than"),
    ],
)
def test_the_writer_refuses_a_layout_or_columns_no_segment_has(layout, columns, match):
    payload = bytearray(1 << 16)  # room for every layout here that gets as far as writing
    with pytest.raises(ValueError, match=match):
        write_segment_tables(payload, layout, *columns)


def test_concat_equals_encoding_all_transactions_at_once():
    first = encode_segment(512, 1, [SegmentTransaction(1, 2, [1], _pages(1))])
    second = encode_segment(
        512, 2, [SegmentTransaction(2, 2, [2], _pages(2)), SegmentTransaction(3, 3, [3], _pages(3))]
    )
    together = encode_segment(
        512,
        1,
        [
            SegmentTransaction(1, 2, [1], _pages(1)),
            SegmentTransaction(2, 2, [2], _pages(2)),
            SegmentTransaction(3, 3, [3], _pages(3)),
        ],
    )
    assert concat_segments([first, second]) == together
    assert concat_segments([first]) == first


def test_concat_refuses_gaps_and_mixed_page_sizes():
    first = encode_segment(512, 1, [SegmentTransaction(1, 2, [1], _pages(1))])
    gap = encode_segment(512, 3, [SegmentTransaction(1, 2, [1], _pages(1))])
    other_size = encode_segment(1024, 2, [SegmentTransaction(1, 2, [1], _pages(1, page_size=1024))])
    with pytest.raises(ReplicaFormatError, match="expected txid 2"):
        concat_segments([first, gap])
    with pytest.raises(ReplicaFormatError, match="page size"):
        concat_segments([first, other_size])
    with pytest.raises(ValueError):
        concat_segments([])


@pytest.mark.parametrize(
    "page_size, transactions, match",
    [
        (500, [SegmentTransaction(1, 1, [1], bytes(500))], "page size"),
        (131072, [SegmentTransaction(1, 1, [1], bytes(131072))], "page size"),
        (512, [], "at least one transaction"),
        (512, [SegmentTransaction(1, 1, [], b"")], "at least one frame"),
        (512, [SegmentTransaction(1, 1, [1], bytes(511))], "bytes of pages"),
        (512, [SegmentTransaction(1, 0, [1], bytes(512))], "db size"),
        (512, [SegmentTransaction(1, 2**32 - 1, [1], bytes(512))], "db size"),
        (512, [SegmentTransaction(1, 1, [0], bytes(512))], "page numbers"),
        (512, [SegmentTransaction(1, 1, [-1], bytes(512))], "page numbers"),
        (512, [SegmentTransaction(1, 1, [2**32 - 1], bytes(512))], "page numbers"),
        (512, [SegmentTransaction(1, 1, [2**32], bytes(512))], "page numbers"),
        (512, [SegmentTransaction(2**63, 1, [1], bytes(512))], "commit time"),
    ],
)
def test_encode_rejects_bad_arguments(page_size, transactions, match):
    with pytest.raises(ValueError, match=match):
        encode_segment(page_size, 1, transactions)


def _header(page_size=512, transactions=1, first_txid=1, frames=1):
    return struct.pack(">IIQI", page_size, transactions, first_txid, frames)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"", "shorter than the segment header"),
        (_header()[:19], "shorter"),
        (_header(page_size=1000), "page size"),
        (_header(transactions=0, frames=0), "no transactions"),
        (_header(transactions=2, frames=1), "2 transactions"),
        (_header(transactions=2**32 - 1, frames=2**32 - 1), "counts say"),
        (_header(first_txid=2**64 - 1), "overflow"),
        (_header() + struct.pack(">qII", 1, 1, 1) + struct.pack(">I", 1), "counts say"),
        (_header() + struct.pack(">qII", 1, 0, 1) + struct.pack(">I", 1) + bytes(512), "db size 0"),
        (
            _header() + struct.pack(">qII", 1, 2**32 - 1, 1) + struct.pack(">I", 1) + bytes(512),
            "db size 4294967295 pages",
        ),
        (
            _header() + struct.pack(">qII", 1, 1, 1) + struct.pack(">I", 2**32 - 1) + bytes(512),
            "page number 4294967295",
        ),
        (_header() + struct.pack(">qII", 1, 1, 0) + struct.pack(">I", 1) + bytes(512), "no frames"),
        (
            _header(transactions=1, frames=2)
            + struct.pack(">qII", 1, 1, 1)
            + struct.pack(">II", 1, 2)
            + bytes(1024),
            "hold 1 frame,",  # one frame, not "1 frames"
        ),
        (
            _header() + struct.pack(">qII", 1, 1, 1) + struct.pack(">I", 0) + bytes(512),
            "page number 0",
        ),
        (_two_transactions() + b"x", "counts say"),
    ],
)
def test_decode_rejects_hostile_payloads(payload, match):
    with pytest.raises(ReplicaFormatError, match=match):
        decode_segment(payload)


def test_absurd_counts_never_allocate():
    # 4 billion frames of 64 KiB claimed in a 20-byte payload: a size error, not MemoryError.
    with pytest.raises(ReplicaFormatError):
        decode_segment(_header(page_size=65536, transactions=2**32 - 1, frames=2**32 - 1))
