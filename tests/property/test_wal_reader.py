"""Property tests: the reader on valid, truncated, corrupted and arbitrary bytes.

Every result is checked by ``assert_result_is_valid``, an independent
re-validation with the plain-Python checksum, and the numpy reader is
compared with the reference reader. Small pages and few frames keep 1000
examples per property fast.
"""

import random
import struct
from dataclasses import dataclass

from hypothesis import assume, given
from hypothesis import strategies as st

from litetool.errors import WalFormatError
from litetool.wal import (
    ByteOrder,
    DecodedWal,
    StopReason,
    checksum_reference,
    decode_wal,
    encode_wal,
    parse_wal_header,
    read_transactions,
    read_transactions_reference,
)

u32 = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class WalCase:
    data: bytes
    page_size: int
    # Expected committed transactions: ([(page number, page), ...], db size).
    committed: list[tuple[list[tuple[int, bytes]], int]]
    frame_count: int


@st.composite
def wals(draw) -> WalCase:
    page_size = draw(st.sampled_from([512, 1024]))
    order = draw(st.sampled_from(list(ByteOrder)))
    salts = draw(st.tuples(u32, u32))
    specs = draw(
        st.lists(
            st.tuples(
                st.lists(st.tuples(st.integers(1, 40), u32), min_size=1, max_size=3),
                st.integers(0, 40),  # db size after commit; 0 = no commit frame
            ),
            max_size=4,
        )
    )
    transactions = [
        ([(number, random.Random(seed).randbytes(page_size)) for number, seed in pages], size)
        for pages, size in specs
    ]
    data = encode_wal(transactions, page_size=page_size, salts=salts, byte_order=order)
    committed, pending = [], []
    for pages, size in transactions:
        pending.extend(pages)
        if size:
            committed.append((pending, size))
            pending = []
    frame_count = sum(len(pages) for pages, _ in transactions)
    return WalCase(data, page_size, committed, frame_count)


def decode_both(data: bytes) -> DecodedWal:
    """Decode with both readers, require identical results, check the result."""
    fast = decode_wal(data)
    assert fast == decode_wal(data, reader=read_transactions_reference)
    assert_result_is_valid(data, fast)
    return fast


def assert_result_is_valid(data: bytes, decoded: DecodedWal) -> None:
    """Re-validate every frame the reader returned, independently of the reader."""
    result = decoded.result
    if decoded.header is None or not decoded.header.checksum_is_valid:
        assert result.transactions == ()
        assert result.end_offset == result.stop_offset == 0
        return
    header = decoded.header
    frame_bytes = 24 + header.page_size
    state, offset = header.checksum, 32
    for transaction in result.transactions:
        assert transaction.start_offset == offset
        assert transaction.end_offset == offset + transaction.frame_count * frame_bytes
        for index, frame_offset in enumerate(transaction.frame_offsets):
            number, db_size, salt1, salt2, sum1, sum2 = struct.unpack_from(">6I", data,
                                                                           frame_offset)
            assert number == transaction.page_numbers[index] != 0
            assert (salt1, salt2) == header.salts
            state = checksum_reference(data[frame_offset : frame_offset + 8], state,
                                       byte_order=header.byte_order)
            state = checksum_reference(
                data[frame_offset + 24 : frame_offset + frame_bytes], state,
                byte_order=header.byte_order,
            )
            assert state == (sum1, sum2)
            is_last = index == transaction.frame_count - 1
            assert (db_size != 0) == is_last
        assert db_size == transaction.db_size_after_commit
        assert transaction.checksum == state
        offset = transaction.end_offset
    assert result.end_offset == offset
    assert result.checksum_state == state
    assert result.stop_offset == offset + result.uncommitted_frame_count * frame_bytes
    assert result.stop_offset <= len(data)


def committed_pages(decoded: DecodedWal, data: bytes) -> list[tuple[list[tuple[int, bytes]], int]]:
    return [
        ([(number, bytes(page)) for number, page in t.iter_pages(data)], t.db_size_after_commit)
        for t in decoded.transactions
    ]


@given(case=wals())
def test_valid_wal_decodes_to_what_was_encoded(case: WalCase) -> None:
    decoded = decode_both(case.data)
    assert committed_pages(decoded, case.data) == case.committed
    assert decoded.result.stop_reason is StopReason.END_OF_DATA
    assert decoded.result.stop_offset == len(case.data)


@given(case=wals(), cut=st.integers(0, 10**9))
def test_truncation_yields_the_committed_transactions_that_fit(case: WalCase, cut: int) -> None:
    cut %= len(case.data) + 1
    full = decode_wal(case.data).transactions
    decoded = decode_both(case.data[:cut])
    assert decoded.transactions == tuple(t for t in full if t.end_offset <= cut)
    frame_bytes = 24 + case.page_size
    if cut >= 32:
        expected = StopReason.END_OF_DATA if (cut - 32) % frame_bytes == 0 else (
            StopReason.PARTIAL_FRAME
        )
        assert decoded.result.stop_reason is expected


@given(case=wals(), frame=st.integers(0, 10**6), position=st.integers(0, 10**6),
       bit=st.integers(0, 7))
def test_a_flipped_bit_ends_the_valid_wal_at_its_frame(case: WalCase, frame: int,
                                                       position: int, bit: int) -> None:
    assume(case.frame_count > 0)
    frame_bytes = 24 + case.page_size
    frame %= case.frame_count
    position %= frame_bytes
    frame_offset = 32 + frame * frame_bytes
    data = bytearray(case.data)
    data[frame_offset + position] ^= 1 << bit
    decoded = decode_both(bytes(data))
    result = decoded.result
    # Frames before the flipped one are untouched, so the WAL ends exactly there.
    assert result.stop_offset == frame_offset
    full = decode_wal(case.data).transactions
    assert decoded.transactions == tuple(t for t in full if t.end_offset <= frame_offset)
    if 8 <= position < 16:
        assert result.stop_reason is StopReason.SALT_MISMATCH
    elif position < 4 and struct.unpack_from(">I", data, frame_offset)[0] == 0:
        assert result.stop_reason is StopReason.INVALID_PAGE_NUMBER
    else:
        assert result.stop_reason is StopReason.CHECKSUM_MISMATCH


@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_raise_only_wal_format_error(data: bytes) -> None:
    try:
        decode_both(data)
    except WalFormatError:
        pass


@given(case=wals(), tail=st.binary(max_size=3000))
def test_arbitrary_bytes_after_a_valid_header(case: WalCase, tail: bytes) -> None:
    decode_both(case.data[:32] + tail)


@given(
    case=wals(),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                   max_size=6),
    cut=st.none() | st.integers(0, 10**6),
)
def test_corrupted_wal_raises_only_wal_format_error(case: WalCase, edits, cut) -> None:
    data = bytearray(case.data)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    try:
        decode_both(bytes(data))
    except WalFormatError:
        pass


@given(case=wals(), batch_sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=8))
def test_reading_in_batches_equals_one_read(case: WalCase, batch_sizes: list[int]) -> None:
    """The engine's pattern: pread a batch at the resume offset, read, advance."""
    header = parse_wal_header(case.data)
    whole = decode_wal(case.data).result
    file_offset, state, seen = 32, header.checksum, []
    for size in [*batch_sizes, len(case.data)]:  # a last batch reads to the end
        batch = case.data[file_offset : file_offset + size]
        result = read_transactions(batch, start_offset=0, page_size=header.page_size,
                                   salts=header.salts, checksum_state=state,
                                   byte_order=header.byte_order)
        assert result == read_transactions_reference(
            batch, start_offset=0, page_size=header.page_size, salts=header.salts,
            checksum_state=state, byte_order=header.byte_order,
        )
        seen.extend(t._replace(start_offset=t.start_offset + file_offset,
                               end_offset=t.end_offset + file_offset)
                    for t in result.transactions)
        file_offset += result.end_offset
        state = result.checksum_state
    assert tuple(seen) == whole.transactions
    assert (file_offset, state) == (whole.end_offset, whole.checksum_state)


# -- scan_commits: frames the wal-index declares committed -------------------------


@given(wals(), st.integers(0, 12))
def test_scan_commits_agrees_with_the_verifying_reader(case, whole):
    """On any prefix of whole valid frames, scan_commits (the small loop up to 8
    frames, numpy above) finds what read_transactions finds."""
    from litetool.wal.reader import scan_commits

    header = parse_wal_header(case.data)
    size = 24 + case.page_size
    buf = case.data[32 : 32 + min(whole, case.frame_count) * size]
    scan = scan_commits(
        buf, page_size=case.page_size, salts=header.salts, checksum_state=header.checksum
    )
    verified = read_transactions(
        buf,
        start_offset=0,
        page_size=case.page_size,
        salts=header.salts,
        checksum_state=header.checksum,
        byte_order=header.byte_order,
    )
    assert scan is not None
    assert scan.end_offset == verified.end_offset == scan.frame_count * size
    assert scan.transaction_count == len(verified.transactions)
    assert tuple(scan.checksum_state) == tuple(verified.checksum_state)
    if verified.transactions:
        assert scan.db_size_after_commit == verified.transactions[-1].db_size_after_commit


@given(st.integers(1, 30), st.integers(0, 29), st.sampled_from(["salt", "page0"]))
def test_scan_commits_refuses_frames_of_another_wal_or_page_zero(count, bad, kind):
    from litetool.wal.reader import scan_commits

    page_size = 512
    count = max(count, bad + 1)
    transactions = [([(i + 1, bytes([i % 256]) * page_size)], i + 1) for i in range(count)]
    data = bytearray(encode_wal(transactions, page_size=page_size, salts=(7, 9)))
    offset = 32 + bad * (24 + page_size)
    if kind == "salt":
        data[offset + 8 : offset + 12] = struct.pack(">I", 8)
    else:
        data[offset : offset + 4] = bytes(4)
    header = parse_wal_header(data)
    scan = scan_commits(
        bytes(data[32:]), page_size=page_size, salts=header.salts, checksum_state=header.checksum
    )
    assert scan is None
