"""The spool record codec, one record at a time (files: tests/property/test_spool.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from spool_builders import frames_after, wal_start

from litetool.engine.spool.spool_codec import (
    HEADER_SIZE,
    RUN_SIZE,
    SpoolRecord,
    WalPosition,
    decode_header,
    decode_records,
    decode_with_extents,
    encode_header,
    encode_record,
    frames_are_whole,
    runs_in_header,
)
from litetool.wal.checksum import ByteOrder

PAGE_SIZE = 512


def record(
    transactions: int = 3, runs: tuple[tuple[int, int], ...] = (), first: int = 5
) -> SpoolRecord:
    """Txids ``first``.. as one page each, from the start of a WAL."""
    start = wal_start(PAGE_SIZE, (7, 8), ByteOrder.LITTLE)
    frames = [(n, n, bytes([n]) * PAGE_SIZE) for n in range(1, transactions + 1)]
    data, end = frames_after(start, frames)
    return SpoolRecord(
        first, first + transactions - 1, 2000, start, end, transactions, transactions, data, runs
    )


def test_a_record_decodes_to_itself_with_its_extent():
    one, two = record(), record(2, runs=((8, 1500),), first=8)
    data = encode_record(one) + encode_record(two)
    records, extents, end = decode_with_extents(data, verify=False)
    assert [replace(r, frames=b"") for r in records] == [
        replace(one, frames=b""),
        replace(two, frames=b""),
    ]
    first_length = len(encode_record(one))
    assert extents == [(7, 0, first_length), (9, first_length, len(data) - first_length)]
    assert end == len(data)


def test_the_header_says_how_many_time_runs_follow():
    runs = ((5, 1000), (6, 1800))
    head = encode_header(record(runs=runs))
    assert len(head) == HEADER_SIZE + 2 * RUN_SIZE
    assert runs_in_header(head[:HEADER_SIZE]) == 2
    assert runs_in_header(head[: HEADER_SIZE - 1]) == 0
    assert decode_header(head[:HEADER_SIZE], 0) is None  # the runs are cut off
    assert decode_header(head, 0).time_runs == runs


def test_commit_times_come_in_runs():
    assert record(3, runs=((5, 1000),)).commit_times() == [1000, 2000, 2000]
    assert record(3).commit_times() == [2000, 2000, 2000]


@pytest.mark.parametrize(
    "runs",
    [
        ((7, 1000),),  # a run ending at the last txid
        ((6, 1000), (5, 1100)),  # txids going back
        ((5, 1000), (6, 900)),  # times going back
        ((5, 3000),),  # after the record's own time
    ],
)
def test_time_runs_that_do_not_fit_are_refused(runs):
    with pytest.raises(ValueError):
        encode_header(record(runs=runs))


def test_frames_of_two_wals_are_refused():
    one = record()
    other = WalPosition(bytes(32), one.position.offset, one.position.checksum)
    with pytest.raises(ValueError):
        encode_header(replace(one, position=other))


def test_a_changed_header_byte_is_no_record():
    data = bytearray(encode_record(record()))
    data[20] ^= 0x01  # the last txid, under the CRC
    assert decode_header(data, 0) is None
    assert decode_records(bytes(data)) == ([], 0)


def test_frames_must_be_exactly_the_transactions_described():
    one = record()
    assert frames_are_whole(one, one.frames)
    assert not frames_are_whole(replace(one, last_txid=8), one.frames)  # one commit short
    changed = bytearray(one.frames)
    changed[-1] ^= 0x01
    assert not frames_are_whole(one, bytes(changed))
