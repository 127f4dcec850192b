"""The WAL checksum: reference against hand-worked values, numpy against reference."""

import random
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetool.wal import ByteOrder, checksum_fast, checksum_reference, encode_frames

MASK = 0xFFFFFFFF


def words(order: ByteOrder, *values: int) -> bytes:
    return struct.pack(("<" if order is ByteOrder.LITTLE else ">") + f"{len(values)}I", *values)


@pytest.mark.parametrize("order", list(ByteOrder))
def test_reference_matches_values_worked_by_hand(order: ByteOrder) -> None:
    # (a, b) = (1, 2): s0 = 0 + 1 + 0 = 1, s1 = 0 + 2 + 1 = 3
    assert checksum_reference(words(order, 1, 2), byte_order=order) == (1, 3)
    # then (3, 4): s0 = 1 + 3 + 3 = 7, s1 = 3 + 4 + 7 = 14
    assert checksum_reference(words(order, 1, 2, 3, 4), byte_order=order) == (7, 14)
    # from state (10, 20) over (0, 0): s0 = 10 + 0 + 20 = 30, s1 = 20 + 0 + 30 = 50
    assert checksum_reference(words(order, 0, 0), (10, 20), byte_order=order) == (30, 50)
    # wraps mod 2**32
    assert checksum_reference(words(order, MASK, MASK), (1, 0), byte_order=order) == (0, MASK)


def test_byte_order_selects_word_order() -> None:
    data = bytes([1, 0, 0, 0, 0, 0, 0, 0])
    assert checksum_reference(data, byte_order=ByteOrder.LITTLE) == (1, 1)
    assert checksum_reference(data, byte_order=ByteOrder.BIG) == (1 << 24, 1 << 24)


def test_empty_input_keeps_the_state() -> None:
    assert checksum_reference(b"", (5, 6)) == (5, 6)
    assert checksum_fast.checksum(b"", (5, 6)) == (5, 6)


@pytest.mark.parametrize("length", [1, 4, 12, 4097])
def test_length_not_a_multiple_of_8_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        checksum_reference(bytes(length))
    with pytest.raises(ValueError, match="multiple of 8"):
        checksum_fast.checksum(bytes(length))


def test_checksum_chains_over_concatenation() -> None:
    rng = random.Random(7)
    first, second = rng.randbytes(808), rng.randbytes(4096)
    state = checksum_reference(first, (3, 4))
    assert checksum_reference(second, state) == checksum_reference(first + second, (3, 4))


# Lengths around the fast path's 1024-word blocks and the frame sizes.
@pytest.mark.parametrize("length", [8, 16, 4088, 4096, 4104, 8192, 12296, 65544, 1 << 20])
@pytest.mark.parametrize("order", list(ByteOrder))
def test_fast_checksum_matches_reference(length: int, order: ByteOrder) -> None:
    rng = random.Random(length)
    data = rng.randbytes(length)
    state = (rng.getrandbits(32), rng.getrandbits(32))
    expected = checksum_reference(data, state, byte_order=order)
    assert checksum_fast.checksum(data, state, byte_order=order) == expected
    assert checksum_fast.checksum(memoryview(bytearray(data)), state, byte_order=order) == expected


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
@pytest.mark.parametrize("order", list(ByteOrder))
def test_frame_terms_equal_matmul_and_reference(page_size: int, order: ByteOrder) -> None:
    rng = random.Random(page_size)
    frame_count = 3
    buf = rng.randbytes(frame_count * (24 + page_size) + 8)
    offset = 8  # frames need not start at the beginning of the buffer
    terms = checksum_fast.frame_terms(buf, offset, frame_count, page_size, order)
    frame_words = checksum_fast.frame_words(buf, offset, frame_count, page_size, order)
    matrix = checksum_fast.frame_coefficient_matrix(page_size)
    assert np.array_equal(frame_words.astype(np.uint32) @ matrix, terms)
    power = checksum_fast.frame_power(page_size).tolist()
    for index in range(frame_count):
        start = offset + index * (24 + page_size)
        covered = buf[start : start + 8] + buf[start + 24 : start + 24 + page_size]
        # With state (0, 0) the checksum is the term alone ...
        assert checksum_reference(covered, byte_order=order) == tuple(terms[index].tolist())
        # ... and from state s it is P @ s + term.
        s0, s1 = rng.getrandbits(32), rng.getrandbits(32)
        expected = (
            (power[0][0] * s0 + power[0][1] * s1 + int(terms[index][0])) & MASK,
            (power[1][0] * s0 + power[1][1] * s1 + int(terms[index][1])) & MASK,
        )
        assert checksum_reference(covered, (s0, s1), byte_order=order) == expected


@pytest.mark.parametrize("order", list(ByteOrder))
def test_verify_frames_flags_exactly_the_broken_frame(order: ByteOrder) -> None:
    rng = random.Random(11)
    page_size = 1024
    frames = [(index + 1, 0, rng.randbytes(page_size)) for index in range(6)]
    body, _ = encode_frames(
        frames, page_size=page_size, salts=(1, 2), checksum_state=(9, 9), byte_order=order
    )
    ok = checksum_fast.verify_frames(body, 0, 6, page_size, order, (9, 9))
    assert ok.tolist() == [True] * 6
    assert not checksum_fast.verify_frames(body, 0, 6, page_size, order, (9, 8))[0]
    broken = bytearray(body)
    broken[3 * (24 + page_size) + 24 + 100] ^= 0x10
    # Frame 3's page changed: frame 3 fails; frame 4 still checks against
    # frame 3's *stored* checksum, which is what parallel verification relies on.
    ok = checksum_fast.verify_frames(bytes(broken), 0, 6, page_size, order, (9, 9))
    assert ok.tolist() == [True, True, True, False, True, True]


def _parted(body: bytes, count: int, page_size: int) -> tuple[bytes, bytes]:
    frames = [body[i * (24 + page_size) : (i + 1) * (24 + page_size)] for i in range(count)]
    return b"".join(f[:24] for f in frames), b"".join(f[24:] for f in frames)


u32 = st.integers(0, 2**32 - 1)


@given(
    st.sampled_from(list(ByteOrder)),
    st.sampled_from([512, 1024, 4096]),
    st.lists(st.tuples(st.integers(1, 12), st.tuples(u32, u32)), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_frames_whose_headers_and_pages_lie_apart_verify_as_whole_frames(
    order, page_size, chains, rng
) -> None:
    """Chains of frames (each from its own checksum), their headers and pages
    apart, some bytes flipped: each frame verifies exactly as it does whole."""
    bodies, starts, at = [], [], 0
    for count, state in chains:
        frames = [
            (rng.randint(1, 99), rng.choice([0, 7]), rng.randbytes(page_size)) for _ in range(count)
        ]
        body, _ = encode_frames(
            frames, page_size=page_size, salts=(5, 6), checksum_state=state, byte_order=order
        )
        bodies.append(body)
        starts.append((at, state))
        at += count
    body = b"".join(bodies)
    broken = bytearray(body)
    for _ in range(rng.randint(0, 3)):  # a covered header word, a stored checksum, a page
        frame = rng.randrange(at) * (24 + page_size)
        broken[frame + rng.choice([rng.randrange(8), rng.randrange(16, 24 + page_size)])] ^= 1
    whole = []
    for (first, state), (count, _) in zip(starts, chains, strict=True):
        chain = bytes(broken[first * (24 + page_size) : (first + count) * (24 + page_size)])
        whole += checksum_fast.verify_frames(chain, 0, count, page_size, order, state).tolist()
    headers, pages = _parted(bytes(broken), at, page_size)
    parted = checksum_fast.verify_parted_frames(headers, pages, at, page_size, order, starts)
    assert parted.tolist() == whole
    assert parted.all() == (broken == body)


def test_fold_matches_reference_chain() -> None:
    rng = random.Random(3)
    page_size = 512
    buf = rng.randbytes(5 * (24 + page_size))
    terms = checksum_fast.frame_terms(buf, 0, 5, page_size, ByteOrder.BIG)
    states = checksum_fast.fold_frame_checksums(terms, page_size, (17, 19))
    state = (17, 19)
    for index in range(5):
        start = index * (24 + page_size)
        covered = buf[start : start + 8] + buf[start + 24 : start + 24 + page_size]
        state = checksum_reference(covered, state, byte_order=ByteOrder.BIG)
        assert states[index] == state


def test_coefficient_matrices_are_cached_and_read_only() -> None:
    first = checksum_fast.frame_coefficient_matrix(4096)
    assert first.base is checksum_fast.frame_coefficient_matrix(4096).base
    assert not first.flags.writeable
    assert first.shape == (6 + 1024, 2)
    assert not first[2:6].any()  # salts and stored checksum are not covered


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
@pytest.mark.parametrize("order", list(ByteOrder))
def test_both_kernels_give_the_same_terms(
    page_size: int, order: ByteOrder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(page_size + 1)
    frame_count = 5
    buf = rng.randbytes(frame_count * (24 + page_size))
    monkeypatch.setattr(checksum_fast, "_MATMUL_MAX_BYTES", 1 << 40)
    by_matmul = checksum_fast.frame_terms(buf, 0, frame_count, page_size, order)
    monkeypatch.setattr(checksum_fast, "_MATMUL_MAX_BYTES", 0)
    monkeypatch.setattr(checksum_fast, "_CHUNK_BYTES", 2 * (24 + page_size))  # several chunks
    by_multiply_reduce = checksum_fast.frame_terms(buf, 0, frame_count, page_size, order)
    assert np.array_equal(by_matmul, by_multiply_reduce)
