"""Property tests for the wal-index header codec (``litetool.wal.shm``)."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from litetool.wal.shm import WAL_INDEX_HEADER_SIZE, WAL_INDEX_READ_SIZE, parse_wal_index

U32 = st.integers(min_value=0, max_value=2**32 - 1)


def u32(value: int) -> bytes:
    return value.to_bytes(4, sys.byteorder)


@st.composite
def wal_indexes(draw):
    header = bytearray(draw(st.binary(min_size=48, max_size=48)))
    init, mx_frame, salts = (
        draw(st.integers(0, 255)),
        draw(U32),
        draw(st.binary(min_size=8, max_size=8)),
    )
    header[12] = init
    header[16:20] = u32(mx_frame)
    header[32:40] = salts
    info = bytearray(draw(st.binary(min_size=36, max_size=36)))
    backfill, attempted = draw(U32), draw(U32)
    info[0:4] = u32(backfill)
    info[32:36] = u32(attempted)
    return bytes(header) * 2 + bytes(info), (bool(init), mx_frame, salts, backfill, attempted)


@given(wal_indexes())
def test_a_consistent_header_reads_back(case):
    raw, (init, mx_frame, salts, backfill, attempted) = case
    assert len(raw) == WAL_INDEX_READ_SIZE
    index = parse_wal_index(raw)
    assert index is not None
    assert (index.initialized, index.mx_frame, index.salts) == (init, mx_frame, salts)
    assert (index.n_backfill, index.n_backfill_attempted) == (backfill, attempted)
    assert index.fully_backfilled == (backfill == mx_frame)
    wal_header = bytes(16) + salts + bytes(8)
    assert index.describes(wal_header)
    assert index.end_offset(4096) == 32 + mx_frame * (24 + 4096)


@given(wal_indexes(), st.integers(0, WAL_INDEX_HEADER_SIZE - 1), st.integers(1, 255))
def test_copies_that_differ_are_a_header_being_written(case, at, flip):
    raw = bytearray(case[0])
    raw[WAL_INDEX_HEADER_SIZE + at] ^= flip
    assert parse_wal_index(bytes(raw)) is None


@given(wal_indexes(), st.integers(0, WAL_INDEX_READ_SIZE))
def test_a_short_read_never_invents_fields(case, length):
    raw = case[0][:length]
    index = parse_wal_index(raw)
    if length < 2 * WAL_INDEX_HEADER_SIZE:
        assert index is None
        return
    assert index is not None
    assert (index.n_backfill is None) == (length < 100)
    assert (index.n_backfill_attempted is None) == (length < WAL_INDEX_READ_SIZE)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(raw):
    index = parse_wal_index(raw)
    assert index is None or len(index.salts) == 8
