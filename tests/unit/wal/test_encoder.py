"""The encoder: what it refuses, and that its frames chain like SQLite's."""

import random

import pytest

from litetool.wal import (
    ByteOrder,
    checksum_reference,
    decode_wal,
    encode_frames,
    encode_wal,
    parse_frame_header,
    parse_wal_header,
)


def page(seed: int, page_size: int = 1024) -> bytes:
    return random.Random(seed).randbytes(page_size)


@pytest.mark.parametrize("order", list(ByteOrder))
def test_frames_chain_from_the_header_checksum(order: ByteOrder) -> None:
    data = encode_wal([([(1, page(1)), (2, page(2))], 2)], page_size=1024, salts=(5, 6),
                      checkpoint_seq=3, byte_order=order)
    header = parse_wal_header(data)
    assert header.checksum_is_valid and header.checkpoint_seq == 3
    state = header.checksum
    for index, expected_commit in enumerate((0, 2)):
        offset = 32 + index * (24 + 1024)
        frame = parse_frame_header(data, offset)
        assert (frame.page_number, frame.db_size_after_commit) == (index + 1, expected_commit)
        assert frame.salts == (5, 6)
        state = checksum_reference(data[offset : offset + 8], state, byte_order=order)
        state = checksum_reference(data[offset + 24 : offset + 24 + 1024], state,
                                   byte_order=order)
        assert frame.checksum == state
        assert data[offset + 24 : offset + 24 + 1024] == page(index + 1)


def test_encode_frames_continues_a_running_checksum() -> None:
    whole = encode_wal([([(1, page(1))], 1), ([(2, page(2))], 2)], page_size=1024,
                       salts=(5, 6))
    header = parse_wal_header(whole)
    first, state = encode_frames([(1, 1, page(1))], page_size=1024, salts=(5, 6),
                                 checksum_state=header.checksum, byte_order=ByteOrder.LITTLE)
    second, end_state = encode_frames([(2, 2, page(2))], page_size=1024, salts=(5, 6),
                                      checksum_state=state, byte_order=ByteOrder.LITTLE)
    assert whole == whole[:32] + first + second
    assert end_state == decode_wal(whole).result.checksum_state
    assert encode_frames([], page_size=1024, salts=(5, 6), checksum_state=(1, 2),
                         byte_order=ByteOrder.BIG) == (b"", (1, 2))


def test_an_empty_wal_is_just_a_header() -> None:
    data = encode_wal([], page_size=65536, salts=(1, 2))
    assert len(data) == 32
    assert decode_wal(data).transactions == ()


@pytest.mark.parametrize(
    ("transactions", "page_size", "message"),
    [
        ([([], 1)], 1024, "no pages"),
        ([([(0, page(1))], 1)], 1024, "page number 0"),
        ([([(1, b"short")], 1)], 1024, "page of 5 bytes"),
        ([([(1 << 32, page(1))], 1)], 1024, "32-bit"),
        ([([(1, page(1))], -1)], 1024, "32-bit"),
        ([], 3000, "page size"),
    ],
)
def test_refuses_what_sqlite_cannot_represent(transactions, page_size: int,
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_wal(transactions, page_size=page_size, salts=(1, 2))
