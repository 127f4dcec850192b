"""The reader: stop reasons, transactions, offsets, resuming, zero-copy pages."""

import random
import struct

import pytest

from litetool.errors import WalFormatError
from litetool.wal import (
    ByteOrder,
    StopReason,
    Transaction,
    decode_wal,
    encode_frames,
    encode_wal,
    parse_wal_header,
    read_transactions,
    read_transactions_reference,
)
from litetool.wal import reader as reader_module

READERS = [read_transactions, read_transactions_reference]
PAGE_SIZE = 512
FRAME = 24 + PAGE_SIZE
SALTS = (0x01020304, 0xA0B0C0D0)


def page(seed: int, page_size: int = PAGE_SIZE) -> bytes:
    return random.Random(seed).randbytes(page_size)


def sample_wal(order: ByteOrder = ByteOrder.LITTLE) -> bytes:
    """Three transactions (2, 1 and 3 frames) and one uncommitted frame."""
    return encode_wal(
        [
            ([(1, page(1)), (2, page(2))], 2),
            ([(3, page(3))], 3),
            ([(2, page(4)), (4, page(5)), (2, page(6))], 4),
            ([(5, page(7))], 0),
        ],
        page_size=PAGE_SIZE,
        salts=SALTS,
        byte_order=order,
    )


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("order", list(ByteOrder))
def test_transactions_offsets_and_uncommitted_tail(reader, order: ByteOrder) -> None:
    data = sample_wal(order)
    decoded = decode_wal(data, reader=reader)
    assert decoded.header is not None and decoded.header.byte_order is order
    result = decoded.result
    assert [t.page_numbers for t in result.transactions] == [(1, 2), (3,), (2, 4, 2)]
    assert [t.db_size_after_commit for t in result.transactions] == [2, 3, 4]
    assert [t.start_offset for t in result.transactions] == [32, 32 + 2 * FRAME, 32 + 3 * FRAME]
    assert [t.end_offset for t in result.transactions] == [
        32 + 2 * FRAME, 32 + 3 * FRAME, 32 + 6 * FRAME
    ]
    assert list(result.transactions[2].frame_offsets) == [32 + 3 * FRAME + i * FRAME
                                                           for i in range(3)]
    assert result.end_offset == 32 + 6 * FRAME
    assert result.stop_reason is StopReason.END_OF_DATA
    assert result.stop_offset == len(data) == 32 + 7 * FRAME
    assert result.uncommitted_frame_count == 1
    # The checksum state at the end is the commit frame's stored checksum.
    stored = struct.unpack_from(">2I", data, result.end_offset - FRAME + 16)
    assert result.checksum_state == stored == result.transactions[-1].checksum


def test_iter_pages_gives_memoryviews_into_the_buffer() -> None:
    data = bytearray(sample_wal())
    transaction = decode_wal(data).transactions[2]
    pages = list(transaction.iter_pages(data))
    assert [number for number, _ in pages] == [2, 4, 2]
    assert [bytes(view) for _, view in pages] == [page(4), page(5), page(6)]
    assert all(view.obj is data for _, view in pages)  # no copy of the page


def test_transaction_fields() -> None:
    transaction = decode_wal(sample_wal()).transactions[0]
    assert isinstance(transaction, Transaction)
    assert (transaction.frame_count, transaction.frame_size, transaction.page_size) == (
        2, FRAME, PAGE_SIZE
    )


@pytest.mark.parametrize("reader", READERS)
def test_partial_frame(reader) -> None:
    data = sample_wal()
    cut = 32 + 3 * FRAME + 100  # inside the third transaction's first frame
    result = decode_wal(data[:cut], reader=reader).result
    assert result.stop_reason is StopReason.PARTIAL_FRAME
    assert result.stop_offset == 32 + 3 * FRAME
    assert len(result.transactions) == 2
    assert result.end_offset == 32 + 3 * FRAME
    assert result.uncommitted_frame_count == 0


@pytest.mark.parametrize("reader", READERS)
def test_frames_left_from_before_a_wal_restart_end_the_wal(reader) -> None:
    """SQLite restarts a WAL by rewriting it from the top with new salts.

    The tail of the old WAL stays in the file; its salts no longer match.
    """
    old = sample_wal()
    new = encode_wal([([(9, page(9))], 9)], page_size=PAGE_SIZE, salts=(SALTS[0] + 1, 77))
    data = new + old[len(new):]
    result = decode_wal(data, reader=reader).result
    assert [t.page_numbers for t in result.transactions] == [(9,)]
    assert result.stop_reason is StopReason.SALT_MISMATCH
    assert result.stop_offset == 32 + FRAME


@pytest.mark.parametrize("reader", READERS)
def test_page_number_zero_ends_the_wal(reader) -> None:
    header = parse_wal_header(sample_wal())
    frames = [(1, 0, page(1)), (0, 1, page(2)), (1, 1, page(3))]
    body, _ = encode_frames(frames, page_size=PAGE_SIZE, salts=SALTS,
                            checksum_state=header.checksum, byte_order=header.byte_order)
    result = decode_wal(sample_wal()[:32] + body, reader=reader).result
    assert result.stop_reason is StopReason.INVALID_PAGE_NUMBER
    assert result.stop_offset == 32 + FRAME
    assert result.transactions == ()
    assert result.uncommitted_frame_count == 1


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("where", "frame"), [(0, 0), (4, 1), (16, 2), (24, 3), (FRAME - 1, 5)])
def test_checksum_mismatch_ends_the_wal(reader, where: int, frame: int) -> None:
    data = bytearray(sample_wal())
    data[32 + frame * FRAME + where] ^= 0x80
    result = decode_wal(bytes(data), reader=reader).result
    assert result.stop_reason is StopReason.CHECKSUM_MISMATCH
    assert result.stop_offset == 32 + frame * FRAME
    assert all(t.end_offset <= result.stop_offset for t in result.transactions)


@pytest.mark.parametrize("reader", READERS)
def test_bad_header_checksum_means_an_empty_wal(reader) -> None:
    data = bytearray(sample_wal())
    data[12] ^= 1  # checkpoint sequence: covered by the header checksum
    decoded = decode_wal(bytes(data), reader=reader)
    assert decoded.header is not None and not decoded.header.checksum_is_valid
    assert decoded.transactions == ()
    assert decoded.result.stop_reason is StopReason.CHECKSUM_MISMATCH
    assert (decoded.result.stop_offset, decoded.result.end_offset) == (0, 0)


@pytest.mark.parametrize("length", [0, 1, 4, 31])
def test_fewer_than_32_bytes_is_a_wal_being_created(length: int) -> None:
    decoded = decode_wal(sample_wal()[:length])
    assert decoded.header is None
    assert decoded.transactions == ()
    expected = StopReason.END_OF_DATA if length == 0 else StopReason.PARTIAL_FRAME
    assert decoded.result.stop_reason is expected


def test_only_non_wal_bytes_raise() -> None:
    with pytest.raises(WalFormatError, match="bad WAL magic"):
        decode_wal(b"SQLite format 3\x00")
    with pytest.raises(WalFormatError, match="byte offset 8"):
        decode_wal(sample_wal()[:8] + struct.pack(">I", 4097) + bytes(40))


@pytest.mark.parametrize("reader", READERS)
def test_every_truncation_yields_the_committed_transactions_that_fit(reader) -> None:
    data = sample_wal(ByteOrder.BIG)
    full = decode_wal(data).transactions
    for cut in range(len(data) + 1):
        result = decode_wal(data[:cut], reader=reader).result
        assert result.transactions == tuple(t for t in full if t.end_offset <= cut), cut


@pytest.mark.parametrize("reader", READERS)
def test_resume_in_a_later_buffer_from_the_end_of_a_read(reader) -> None:
    """The engine preads batches: resume at end_offset with the state it reported."""
    data = sample_wal()
    header = parse_wal_header(data)
    options = dict(page_size=PAGE_SIZE, salts=header.salts, byte_order=header.byte_order)
    first = reader(data[: 32 + 2 * FRAME + 10], start_offset=32,
                   checksum_state=header.checksum, **options)
    assert [t.page_numbers for t in first.transactions] == [(1, 2)]
    # The next batch is the file from first.end_offset on: offsets are into it.
    batch = data[first.end_offset :]
    second = reader(batch, start_offset=0, checksum_state=first.checksum_state, **options)
    assert [t.page_numbers for t in second.transactions] == [(3,), (2, 4, 2)]
    assert second.transactions[0].start_offset == 0
    assert first.end_offset + second.end_offset == decode_wal(data).result.end_offset
    # A wrong incoming state breaks the first frame of the batch.
    wrong = reader(batch, start_offset=0, checksum_state=(0, 0), **options)
    assert wrong.stop_reason is StopReason.CHECKSUM_MISMATCH
    assert wrong.stop_offset == 0


def test_fast_reader_stops_in_a_later_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "_BATCH_BYTES", 2 * FRAME)
    data = bytearray(sample_wal())
    data[32 + 5 * FRAME + 30] ^= 4
    fast = decode_wal(bytes(data)).result
    assert fast == decode_wal(bytes(data), reader=read_transactions_reference).result
    assert fast.stop_offset == 32 + 5 * FRAME
    assert len(fast.transactions) == 2


@pytest.mark.parametrize("reader", READERS)
def test_arguments_no_header_could_give_are_refused(reader) -> None:
    options = dict(salts=SALTS, checksum_state=(0, 0), byte_order=ByteOrder.LITTLE)
    with pytest.raises(ValueError, match="page size"):
        reader(b"", start_offset=0, page_size=1000, **options)
    with pytest.raises(ValueError, match="start offset"):
        reader(b"abc", start_offset=4, page_size=512, **options)


@pytest.mark.parametrize("reader", READERS)
def test_empty_buffer_at_start_offset(reader) -> None:
    result = reader(b"x" * 32, start_offset=32, page_size=512, salts=SALTS,
                    checksum_state=(5, 6), byte_order=ByteOrder.LITTLE)
    assert result.transactions == ()
    assert (result.end_offset, result.stop_offset, result.checksum_state) == (32, 32, (5, 6))
    assert result.stop_reason is StopReason.END_OF_DATA


@pytest.mark.parametrize("order", list(ByteOrder))
def test_fast_reader_with_the_chunked_kernel(order: ByteOrder, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from litetool.wal import checksum_fast

    monkeypatch.setattr(checksum_fast, "_MATMUL_MAX_BYTES", 0)
    monkeypatch.setattr(checksum_fast, "_CHUNK_BYTES", 3 * FRAME)
    data = sample_wal(order)
    assert decode_wal(data) == decode_wal(data, reader=read_transactions_reference)
    broken = bytearray(data)
    broken[32 + 4 * FRAME + 200] ^= 1
    result = decode_wal(bytes(broken)).result
    assert result == decode_wal(bytes(broken), reader=read_transactions_reference).result
    assert (result.stop_reason, result.stop_offset) == (StopReason.CHECKSUM_MISMATCH,
                                                        32 + 4 * FRAME)
