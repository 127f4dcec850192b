"""Property tests: the numpy checksum agrees with the plain-Python reference."""

import random

from hypothesis import given
from hypothesis import strategies as st

from litetool.wal import ByteOrder, checksum_fast, checksum_reference

u32 = st.integers(0, 2**32 - 1)
orders = st.sampled_from(list(ByteOrder))


@given(seed=u32, pair_count=st.integers(0, 3000), state=st.tuples(u32, u32), order=orders)
def test_fast_checksum_matches_reference(seed, pair_count, state, order) -> None:
    data = random.Random(seed).randbytes(8 * pair_count)
    assert checksum_fast.checksum(data, state, byte_order=order) == checksum_reference(
        data, state, byte_order=order
    )


@given(data=st.binary(max_size=2048).map(lambda b: b[: len(b) // 8 * 8]),
       state=st.tuples(u32, u32), order=orders)
def test_fast_checksum_matches_reference_on_structured_bytes(data, state, order) -> None:
    assert checksum_fast.checksum(data, state, byte_order=order) == checksum_reference(
        data, state, byte_order=order
    )


@given(
    page_size=st.sampled_from([512, 1024, 2048]),
    frame_count=st.integers(1, 4),
    seed=u32,
    state=st.tuples(u32, u32),
    order=orders,
)
def test_frame_terms_and_fold_match_the_reference_chain(
    page_size, frame_count, seed, state, order
) -> None:
    frame_bytes = 24 + page_size
    buf = random.Random(seed).randbytes(frame_count * frame_bytes)
    terms = checksum_fast.frame_terms(buf, 0, frame_count, page_size, order)
    folded = checksum_fast.fold_frame_checksums(terms, page_size, state)
    chain = state
    for index in range(frame_count):
        start = index * frame_bytes
        chain = checksum_reference(buf[start : start + 8], chain, byte_order=order)
        chain = checksum_reference(buf[start + 24 : start + frame_bytes], chain, byte_order=order)
        assert folded[index] == chain
