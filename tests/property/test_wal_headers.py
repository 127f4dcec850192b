"""Property tests: WAL header and frame header round trips, every page size, both orders."""

import random

from hypothesis import given
from hypothesis import strategies as st

from litetool.wal import (
    PAGE_SIZES,
    WAL_FORMAT_VERSION,
    ByteOrder,
    FrameHeader,
    StopReason,
    WalHeader,
    decode_wal,
    encode_frame_header,
    encode_frames,
    encode_wal_header,
    new_wal_header,
    parse_frame_header,
    parse_wal_header,
    read_transactions,
    read_transactions_reference,
)

u32 = st.integers(0, 2**32 - 1)
orders = st.sampled_from(list(ByteOrder))
page_sizes = st.sampled_from(PAGE_SIZES)


@given(page_size=page_sizes, order=orders, salts=st.tuples(u32, u32), checkpoint_seq=u32)
def test_new_wal_header_round_trips(page_size, order, salts, checkpoint_seq) -> None:
    header = new_wal_header(page_size=page_size, salts=salts, checkpoint_seq=checkpoint_seq,
                            byte_order=order)
    data = encode_wal_header(header)
    assert len(data) == 32
    assert parse_wal_header(data) == header
    assert header.checksum_is_valid
    decoded = decode_wal(data)
    assert decoded.header == header
    assert decoded.transactions == ()
    assert decoded.result.stop_reason is StopReason.END_OF_DATA
    assert decoded.result.checksum_state == header.checksum


@given(order=orders, page_size=page_sizes, fields=st.tuples(u32, u32, u32, u32, u32))
def test_any_wal_header_fields_round_trip(order, page_size, fields) -> None:
    header = WalHeader(order, WAL_FORMAT_VERSION, page_size, *fields)
    assert parse_wal_header(encode_wal_header(header)) == header


@given(fields=st.tuples(u32, u32, u32, u32, u32, u32), prefix=st.binary(max_size=8))
def test_frame_header_round_trips(fields, prefix) -> None:
    header = FrameHeader(*fields)
    data = encode_frame_header(header)
    assert len(data) == 24
    assert parse_frame_header(prefix + data, len(prefix)) == header
    assert header.is_commit == (fields[1] != 0)


@given(
    page_size=page_sizes,
    order=orders,
    salts=st.tuples(u32, u32),
    state=st.tuples(u32, u32),
    page_number=st.integers(1, 2**32 - 1),
    db_size=u32,
    seed=u32,
)
def test_one_frame_round_trips_through_both_readers(
    page_size, order, salts, state, page_number, db_size, seed
) -> None:
    page = random.Random(seed).randbytes(page_size)
    body, end_state = encode_frames([(page_number, db_size, page)], page_size=page_size,
                                    salts=salts, checksum_state=state, byte_order=order)
    assert len(body) == 24 + page_size
    header = parse_frame_header(body)
    assert (header.page_number, header.db_size_after_commit, header.salts) == (
        page_number, db_size, salts
    )
    assert header.checksum == end_state
    options = dict(start_offset=0, page_size=page_size, salts=salts, checksum_state=state,
                   byte_order=order)
    result = read_transactions(body, **options)
    assert result == read_transactions_reference(body, **options)
    assert result.stop_reason is StopReason.END_OF_DATA
    if db_size:
        (transaction,) = result.transactions
        assert transaction.page_numbers == (page_number,)
        assert transaction.db_size_after_commit == db_size
        assert [bytes(view) for _, view in transaction.iter_pages(body)] == [page]
        assert result.checksum_state == end_state
    else:
        assert result.transactions == ()
        assert result.uncommitted_frame_count == 1
        assert result.checksum_state == state


@given(
    page_size=st.sampled_from(PAGE_SIZES[:4]),
    order=orders,
    salts=st.tuples(u32, u32),
    page_numbers=st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=12),
    tail=st.integers(0, 23),
    seed=u32,
)
def test_frame_offsets_and_page_numbers_follow_the_encoded_frames(
    page_size, order, salts, page_numbers, tail, seed
) -> None:
    from litetool.wal.header import (
        WAL_HEADER_SIZE,
        checksum_of,
        frame_checksum_offset,
        frame_grid,
        frame_offset,
        frame_page_numbers,
        frame_parts,
        frames_between,
        page_offset,
    )

    rng = random.Random(seed)
    pages = [rng.randbytes(page_size) for _ in page_numbers]
    body, _ = encode_frames(
        [(number, 0, page) for number, page in zip(page_numbers, pages, strict=True)],
        page_size=page_size,
        salts=salts,
        checksum_state=(0, 0),
        byte_order=order,
    )
    wal = bytes(WAL_HEADER_SIZE) + body + bytes(tail)  # a partial frame at the end
    count = len(page_numbers)
    assert frames_between(WAL_HEADER_SIZE, len(wal), page_size) == count
    assert frame_offset(count, page_size) == len(wal) - tail
    for index, (number, page) in enumerate(zip(page_numbers, pages, strict=True)):
        at = frame_offset(index, page_size)
        header = parse_frame_header(wal, at)
        assert header.page_number == number
        assert wal[page_offset(at) : page_offset(at) + page_size] == page
        end = frame_offset(index + 1, page_size)
        stored = wal[frame_checksum_offset(end, page_size) :][:8]
        assert checksum_of(stored) == header.checksum
    assert frame_page_numbers(wal[WAL_HEADER_SIZE:], page_size).tolist() == page_numbers
    headers, grid_pages = frame_parts(frame_grid(wal, page_size, count, offset=WAL_HEADER_SIZE))
    assert [bytes(row) for row in grid_pages] == pages
    assert [bytes(row) for row in headers] == [
        wal[frame_offset(i, page_size) : page_offset(frame_offset(i, page_size))]
        for i in range(count)
    ]
