"""Batched WAL checksums with numpy (this module imports numpy: import it lazily).

The algorithm is specified in ``litetool.wal.checksum``; this module computes
the same values, many frames at a time, and is tested against that reference.

Linear form. One pair step is ``state' = M @ state + (a, a + b)`` with
``M = [[1, 1], [1, 2]]`` mod 2**32. ``M`` is the square of the Fibonacci
matrix ``[[0, 1], [1, 1]]``, so with ``F(0) = 0, F(1) = 1, ...`` (mod 2**32):

- ``M**n = [[F(2n-1), F(2n)], [F(2n), F(2n+1)]]``;
- over ``L`` words (``L/2`` pairs), word ``p`` (0-based) adds
  ``(F(L-1-p), F(L-p)) * w_p`` to the final state.

So the checksum over ``L`` words from ``state`` is
``M**(L/2) @ state + c`` where ``c = w @ K`` and ``K`` is the ``(L x 2)``
coefficient matrix ``K[p] = (F(L-1-p), F(L-p))``.

A frame's checksum covers frame header bytes 0..8 and its page:
``L = 2 + page_size/4`` words. For frame ``f`` in a batch,

    s_f = P @ s_(f-1) + c_f,    P = M**(L/2),   c_f = frame_words_f @ K_frame

where ``K_frame`` is the coefficient matrix laid over the *whole* frame
(``6 + page_size/4`` words) with zero rows for the salts and the stored
checksum (frame header bytes 8..24). That lets ``c_f`` be computed straight
from a zero-copy ``(F x frame_words)`` view of the WAL bytes.

- **Verification** needs no sequential fold: frame ``f`` is checked with
  frame ``f-1``'s *stored* checksum as ``s_(f-1)``; the chain is valid up to
  the first frame that fails.
- **Computing** checksums (encoding) folds ``s_f = P @ s_(f-1) + c_f``
  frame by frame, about a microsecond each.
- **Big-endian** words (magic 0x377f0683) are read through a big-endian
  dtype and byte-swapped into native order one cache-sized chunk at a time.

Kernel choice: ``c_f = W @ K`` is a ``uint32`` product that wraps mod 2**32.
numpy's integer matmul is a plain loop (no BLAS); on the 2-core development
machine it ran at about 2.1-2.7 GB/s, while computing each of the two
columns as an element-wise multiply followed by a row sum, over cache-sized
chunks of frames, ran at about 3.5-4.5 GB/s (``bench/wal_codec.py`` prints
both). This module uses the latter for batches over 64 KiB and the single
matmul below that, where per-call cost dominates; the result is the same
product. Coefficient matrices are cached per page size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from litetool.wal.checksum import ByteOrder, ChecksumState

_MASK = 0xFFFFFFFF
# Frames per kernel chunk are sized so a chunk and its scratch stay in L2.
_CHUNK_BYTES = 1 << 20
# Up to this many bytes of frames, one uint32 matmul is faster than
# multiply + row sum, whose two scratch arrays and four calls cost ~20 us
# (crossover measured at ~15 frames of 4 KiB).
_MATMUL_MAX_BYTES = 64 << 10
# Words per block when checksumming one long buffer.
_BLOCK_WORDS = 1024
# Frame header words outside the checksum: salt1, salt2, checksum1, checksum2.
_FRAME_HEADER_WORDS = 6
_COVERED_HEADER_WORDS = 2


_WORD_DTYPES = {ByteOrder.LITTLE: np.dtype("<u4"), ByteOrder.BIG: np.dtype(">u4")}


@functools.lru_cache(maxsize=64)
def _fibonacci(count: int) -> tuple[int, ...]:
    """F(0) .. F(count-1) mod 2**32."""
    values = [0, 1]
    while len(values) < count:
        values.append((values[-1] + values[-2]) & _MASK)
    return tuple(values[:count])


def _pair_power(pair_count: int) -> tuple[int, int, int, int]:
    """M**pair_count mod 2**32 as (m00, m01, m10, m11)."""
    result = (1, 0, 0, 1)
    base = (1, 1, 1, 2)
    exponent = pair_count
    while exponent:
        if exponent & 1:
            result = _multiply_2x2(result, base)
        base = _multiply_2x2(base, base)
        exponent >>= 1
    return result


def _multiply_2x2(
    left: tuple[int, int, int, int], right: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    a, b, c, d = left
    e, f, g, h = right
    return (
        (a * e + b * g) & _MASK,
        (a * f + b * h) & _MASK,
        (c * e + d * g) & _MASK,
        (c * f + d * h) & _MASK,
    )


@functools.lru_cache(maxsize=64)
def _coefficient_rows(word_count: int) -> np.ndarray:
    """(2 x word_count) uint32: row j holds column j of K for ``word_count`` words."""
    fib = np.array(_fibonacci(word_count + 1), dtype=np.uint32)
    rows = np.empty((2, word_count), dtype=np.uint32)
    rows[0] = fib[word_count - 1 :: -1][:word_count]  # F(L-1-p)
    rows[1] = fib[word_count:0:-1]  # F(L-p)
    rows.flags.writeable = False
    return rows


@functools.lru_cache(maxsize=16)
def _frame_coefficient_rows(page_size: int) -> np.ndarray:
    """(2 x frame_words) uint32: K_frame transposed, zero over salts and checksum."""
    covered = _coefficient_rows(_COVERED_HEADER_WORDS + page_size // 4)
    rows = np.zeros((2, _FRAME_HEADER_WORDS + page_size // 4), dtype=np.uint32)
    rows[:, :_COVERED_HEADER_WORDS] = covered[:, :_COVERED_HEADER_WORDS]
    rows[:, _FRAME_HEADER_WORDS:] = covered[:, _COVERED_HEADER_WORDS:]
    rows.flags.writeable = False
    return rows


@functools.lru_cache(maxsize=16)
def frame_coefficient_matrix(page_size: int) -> np.ndarray:
    """K_frame: the read-only ``(6 + page_size/4) x 2`` uint32 coefficient matrix.

    ``frame_words @ frame_coefficient_matrix(page_size)`` is ``c_f`` for each
    row of whole-frame words (see the module docstring).
    """
    matrix = np.ascontiguousarray(_frame_coefficient_rows(page_size).T)
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=16)
def frame_power(page_size: int) -> np.ndarray:
    """P = M**(1 + page_size/8): how one frame carries the incoming state (2 x 2 uint32)."""
    m00, m01, m10, m11 = _pair_power((_COVERED_HEADER_WORDS + page_size // 4) // 2)
    power = np.array([[m00, m01], [m10, m11]], dtype=np.uint32)
    power.flags.writeable = False
    return power


@functools.lru_cache(maxsize=16)
def _frame_power_transposed(page_size: int) -> np.ndarray:
    return np.ascontiguousarray(frame_power(page_size).T)


def frame_words(
    buf: bytes | bytearray | memoryview,
    offset: int,
    frame_count: int,
    page_size: int,
    byte_order: ByteOrder,
) -> np.ndarray:
    """A zero-copy ``(frame_count x (6 + page_size/4))`` view of whole frames as words.

    The words are in the checksum byte order, so columns 0..5 (the frame
    header fields, always big-endian) read correctly only for big-endian.
    """
    width = _FRAME_HEADER_WORDS + page_size // 4
    if frame_count == 0:
        return np.empty((0, width), dtype=_WORD_DTYPES[byte_order])
    words = np.frombuffer(
        buf, dtype=_WORD_DTYPES[byte_order], count=frame_count * width, offset=offset
    )
    return words.reshape(frame_count, width)


def frame_terms(
    buf: bytes | bytearray | memoryview,
    offset: int,
    frame_count: int,
    page_size: int,
    byte_order: ByteOrder,
) -> np.ndarray:
    """c_f for ``frame_count`` whole frames starting at ``buf[offset]``: (F x 2) uint32.

    The salts and stored checksums of the frames do not affect the result.
    """
    return terms_of_frame_words(
        frame_words(buf, offset, frame_count, page_size, byte_order), page_size
    )


def terms_of_frame_words(words: np.ndarray, page_size: int) -> np.ndarray:
    """c_f for each row of a ``(F x (6 + page_size/4))`` word array: (F x 2) uint32.

    ``words`` may have a big-endian dtype. Both kernels compute the same
    product: a single matmul for a few frames (its per-call cost is lower),
    multiply + row sum in chunks for many (its per-byte cost is lower).
    """
    if words.nbytes <= _MATMUL_MAX_BYTES:
        return words @ frame_coefficient_matrix(page_size)
    return _multiply_reduce(words, _frame_coefficient_rows(page_size))


def _multiply_reduce(words: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``words @ rows.T`` mod 2**32, as multiply + row sum over cache-sized chunks."""
    count, width = words.shape
    terms = np.empty((count, 2), dtype=np.uint32)
    chunk = max(1, _CHUNK_BYTES // (4 * width))
    scratch = np.empty((min(chunk, count), width), dtype=np.uint32)
    # Big-endian words: byte-swap each chunk once into native order rather
    # than letting both multiplies swap on the fly (measured ~4% faster).
    native = None if words.dtype.isnative else np.empty_like(scratch)
    for start in range(0, count, chunk):
        block = words[start : start + chunk]
        size = len(block)
        if native is not None:
            np.copyto(native[:size], block)
            block = native[:size]
        for column in (0, 1):
            np.multiply(block, rows[column], out=scratch[:size])
            np.add.reduce(scratch[:size], axis=1, out=terms[start : start + size, column])
    return terms


def stored_checksums(
    buf: bytes | bytearray | memoryview, offset: int, frame_count: int, page_size: int
) -> np.ndarray:
    """The checksums stored in the frame headers (big-endian fields): (F x 2) uint32."""
    header = frame_words(buf, offset, frame_count, page_size, ByteOrder.BIG)
    return header[:, 4:6].astype(np.uint32)


def verify_frames(
    buf: bytes | bytearray | memoryview,
    offset: int,
    frame_count: int,
    page_size: int,
    byte_order: ByteOrder,
    checksum_state: ChecksumState,
) -> np.ndarray:
    """Per frame, True when its stored checksum is right (bool array of length F).

    Frame 0 is checked against ``checksum_state`` (the checksum before it);
    frame ``f > 0`` against frame ``f-1``'s stored checksum. The frames form a
    valid chain exactly up to the first False. Salts and page numbers are
    not checked here.
    """
    words = frame_words(buf, offset, frame_count, page_size, byte_order)
    stored = stored_checksums(buf, offset, frame_count, page_size)
    return verify_frame_words(words, stored, page_size, checksum_state)


def verify_frame_words(
    words: np.ndarray, stored: np.ndarray, page_size: int, checksum_state: ChecksumState
) -> np.ndarray:
    """``verify_frames`` on a word array from ``frame_words`` and its stored checksums.

    For callers that already hold both (the reader), to save recomputing them.
    """
    terms = terms_of_frame_words(words, page_size)
    return _chains_hold(terms, stored, page_size, [(0, checksum_state)] if len(terms) else [])


def _chains_hold(
    terms: np.ndarray,
    stored: np.ndarray,
    page_size: int,
    chain_starts: Sequence[tuple[int, ChecksumState]],
) -> np.ndarray:
    """Per frame, whether its stored checksum follows from the one before it (or,
    at a chain's start, from that chain's incoming state) plus its term ``c_f``."""
    previous = np.empty_like(terms)
    previous[1:] = stored[:-1]
    for index, state in chain_starts:
        previous[index] = state
    expected = previous @ _frame_power_transposed(page_size)
    expected += terms
    return (expected == stored).all(axis=1)


def verify_parted_frames(
    headers: bytes | bytearray | memoryview,
    pages: bytes | bytearray | memoryview,
    frame_count: int,
    page_size: int,
    byte_order: ByteOrder,
    chain_starts: Sequence[tuple[int, ChecksumState]],
) -> np.ndarray:
    """``verify_frames`` for frames whose headers and pages lie apart: ``headers``
    holds ``frame_count`` 24-byte frame headers back to back, ``pages`` their
    pages. The checksum is linear in the words, so the two parts' terms add up
    to the whole frame's (each part times its rows of ``K_frame``).

    The frames may be several chains: ``chain_starts`` gives, in order, the
    index of each chain's first frame (the first is 0) and the checksum
    before it; every other frame is checked against the one before it.
    """
    if frame_count == 0:
        return np.empty(0, dtype=bool)
    dtype = _WORD_DTYPES[byte_order]
    head = np.frombuffer(headers, dtype=dtype, count=frame_count * _FRAME_HEADER_WORDS)
    head = head.reshape(frame_count, _FRAME_HEADER_WORDS)[:, :_COVERED_HEADER_WORDS]
    body = np.frombuffer(pages, dtype=dtype, count=frame_count * page_size // 4)
    body = body.reshape(frame_count, page_size // 4)
    rows = _coefficient_rows(_COVERED_HEADER_WORDS + page_size // 4)
    terms = head @ np.ascontiguousarray(rows[:, :_COVERED_HEADER_WORDS].T)
    terms += _multiply_reduce(body, _page_coefficient_rows(page_size))
    stored = np.frombuffer(headers, dtype=">u4", count=frame_count * _FRAME_HEADER_WORDS)
    stored = stored.reshape(frame_count, _FRAME_HEADER_WORDS)[:, 4:6].astype(np.uint32)
    return _chains_hold(terms, stored, page_size, chain_starts)


@functools.lru_cache(maxsize=16)
def _page_coefficient_rows(page_size: int) -> np.ndarray:
    """(2 x page_size/4) uint32: K's rows over a frame's page words."""
    rows = _coefficient_rows(_COVERED_HEADER_WORDS + page_size // 4)
    page_rows = np.ascontiguousarray(rows[:, _COVERED_HEADER_WORDS:])
    page_rows.flags.writeable = False
    return page_rows


def fold_frame_checksums(
    terms: np.ndarray, page_size: int, checksum_state: ChecksumState
) -> list[ChecksumState]:
    """The running checksum after each frame, from ``frame_terms`` and the incoming state."""
    m00, m01, m10, m11 = _pair_power((_COVERED_HEADER_WORDS + page_size // 4) // 2)
    s0, s1 = checksum_state
    states: list[ChecksumState] = []
    for t0, t1 in terms.tolist():
        s0, s1 = (m00 * s0 + m01 * s1 + t0) & _MASK, (m10 * s0 + m11 * s1 + t1) & _MASK
        states.append((s0, s1))
    return states


def checksum(
    data: bytes | bytearray | memoryview,
    state: ChecksumState = (0, 0),
    *,
    byte_order: ByteOrder = ByteOrder.LITTLE,
) -> ChecksumState:
    """Continue the WAL checksum ``state`` over ``data`` (same contract as the reference).

    The buffer is cut into blocks whose terms are one batched product; the
    block terms are then combined pairwise (log2 of the block count numpy
    steps), so nothing here loops per word or per block in Python.
    """
    if len(data) % 8:
        raise ValueError(f"WAL checksum input must be a multiple of 8 bytes, got {len(data)}")
    word_count = len(data) // 4
    if word_count == 0:
        return state
    words = np.frombuffer(data, dtype=_WORD_DTYPES[byte_order], count=word_count)
    block_count, tail_count = divmod(word_count, _BLOCK_WORDS)
    rows = _coefficient_rows(_BLOCK_WORDS)
    s0, s1 = state
    if block_count:
        blocks = words[: block_count * _BLOCK_WORDS].reshape(block_count, _BLOCK_WORDS)
        combined = _combine_blocks(_multiply_reduce(blocks, rows), _BLOCK_WORDS // 2)
        m00, m01, m10, m11 = _pair_power(block_count * _BLOCK_WORDS // 2)
        s0, s1 = (
            (m00 * s0 + m01 * s1 + combined[0]) & _MASK,
            (m10 * s0 + m11 * s1 + combined[1]) & _MASK,
        )
    if tail_count:
        tail = words[block_count * _BLOCK_WORDS :].reshape(1, tail_count)
        # The last tail_count coefficients of a block are those of tail_count words.
        t0, t1 = _multiply_reduce(tail, rows[:, _BLOCK_WORDS - tail_count :])[0].tolist()
        m00, m01, m10, m11 = _pair_power(tail_count // 2)
        s0, s1 = (m00 * s0 + m01 * s1 + t0) & _MASK, (m10 * s0 + m11 * s1 + t1) & _MASK
    return (s0, s1)


def _combine_blocks(terms: np.ndarray, pairs_per_block: int) -> tuple[int, int]:
    """sum_b Q**(B-1-b) @ terms[b] mod 2**32, Q = M**pairs_per_block, B = len(terms)."""
    m00, m01, m10, m11 = _pair_power(pairs_per_block)
    power = np.array([[m00, m01], [m10, m11]], dtype=np.uint32)
    while len(terms) > 1:
        if len(terms) % 2:
            # A zero block in front changes nothing: its weight multiplies zero.
            terms = np.concatenate([np.zeros((1, 2), dtype=np.uint32), terms])
        terms = terms[0::2] @ power.T + terms[1::2]
        power = power @ power
    t0, t1 = terms[0].tolist()
    return (t0, t1)
