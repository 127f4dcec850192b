"""Properties of the segment codec: round trips, concatenation, hostile input."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from litetool.errors import ReplicaFormatError
from litetool.storage import SegmentTransaction, concat_segments, decode_segment, encode_segment

page_sizes = st.sampled_from([512, 1024, 4096])


@st.composite
def segments(draw, first_txid=None, page_size=None):
    page_size = page_size or draw(page_sizes)
    first_txid = draw(st.integers(0, 2**40)) if first_txid is None else first_txid
    transactions = []
    for _ in range(draw(st.integers(1, 4))):
        numbers = draw(st.lists(st.integers(1, 2**32 - 2), min_size=1, max_size=4))
        fill = draw(st.binary(min_size=1, max_size=8))
        pages = (fill * (len(numbers) * page_size // len(fill) + 1))[: len(numbers) * page_size]
        transactions.append(
            SegmentTransaction(
                commit_time_us=draw(st.integers(-(2**63), 2**63 - 1)),
                db_size_pages=draw(st.integers(1, 2**32 - 2)),
                page_numbers=numbers,
                pages=pages,
            )
        )
    return page_size, first_txid, transactions


@given(segments())
def test_round_trip(segment_args):
    page_size, first_txid, transactions = segment_args
    decoded = decode_segment(encode_segment(page_size, first_txid, transactions))
    assert (decoded.page_size, decoded.first_txid) == (page_size, first_txid)
    assert decoded.last_txid == first_txid + len(transactions) - 1
    assert list(decoded.commit_times_us) == [t.commit_time_us for t in transactions]
    assert list(decoded.db_sizes_pages) == [t.db_size_pages for t in transactions]
    assert list(decoded.frame_counts) == [len(t.page_numbers) for t in transactions]
    assert list(decoded.page_numbers) == [n for t in transactions for n in t.page_numbers]
    assert bytes(decoded.pages) == b"".join(t.pages for t in transactions)
    frame = 0
    for index, transaction in enumerate(transactions):
        for offset, _ in enumerate(transaction.page_numbers):
            page = transaction.pages[offset * page_size : (offset + 1) * page_size]
            assert bytes(decoded.page(frame)) == page
            frame += 1
        assert decoded.frames_through(first_txid + index) == frame


@given(segments(), st.data())
def test_concat_of_a_split_equals_the_whole(segment_args, data):
    page_size, first_txid, transactions = segment_args
    cut = data.draw(st.integers(1, len(transactions)))
    head = encode_segment(page_size, first_txid, transactions[:cut])
    parts = [head]
    if cut < len(transactions):
        parts.append(encode_segment(page_size, first_txid + cut, transactions[cut:]))
    assert concat_segments(parts) == encode_segment(page_size, first_txid, transactions)


@given(segments(), st.data())
def test_truncation_and_extension_are_rejected(segment_args, data):
    payload = encode_segment(*segment_args)
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        decode_segment(payload[:cut])
        raise AssertionError("a truncated segment decoded")
    except ReplicaFormatError:
        pass
    try:
        decode_segment(payload + data.draw(st.binary(min_size=1, max_size=600)))
        raise AssertionError("an extended segment decoded")
    except ReplicaFormatError:
        pass


def _decodes_or_format_error(payload):
    try:
        segment = decode_segment(payload)
    except ReplicaFormatError:
        return None
    assert segment.frame_count >= segment.transaction_count >= 1
    return segment


@given(st.binary(max_size=1200))
def test_arbitrary_bytes(payload):
    _decodes_or_format_error(payload)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=2200),
)
def test_hostile_headers_only_raise_format_errors(page_size, transactions, first, frames, rest):
    _decodes_or_format_error(struct.pack(">IIQI", page_size, transactions, first, frames) + rest)


@given(segments(), st.data())
def test_bit_flips_in_a_segment_never_crash(segment_args, data):
    payload = bytearray(encode_segment(*segment_args))
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    payload[bit // 8] ^= 1 << (bit % 8)
    _decodes_or_format_error(bytes(payload))
