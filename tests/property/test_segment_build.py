"""Segments built from spooled WAL frames equal the segment codec's own encoding.

Both write the header and tables through ``write_segment_tables``; these
properties guard what each gathers for it (the engine from spool records and
their frame headers, ``encode_segment`` from its arguments) and the page
images each places."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.runtime.buffers import ReusableBuffer
from litetool.engine.spool.spool_codec import SpoolRecord, WalPosition
from litetool.engine.sync.segment_build import build_segment, build_segment_from_spool
from litetool.storage.format.segment import SegmentTransaction, decode_segment, encode_segment
from litetool.wal.header import WAL_HEADER_SIZE, encode_wal_header, new_wal_header

page_sizes = st.sampled_from([512, 1024, 4096])
# records -> transactions -> page numbers
shapes = st.lists(
    st.lists(st.lists(st.integers(1, 50), min_size=1, max_size=4), min_size=1, max_size=4),
    min_size=1,
    max_size=4,
)


def frame(page: int, commit: int, data: bytes) -> bytes:
    return page.to_bytes(4, "big") + commit.to_bytes(4, "big") + bytes(16) + data


@given(page_sizes, shapes, st.integers(1, 1000), st.randoms(use_true_random=False))
def test_build_segment_matches_encode_segment(page_size, shape, first_txid, rnd):
    raw = encode_wal_header(new_wal_header(page_size=page_size, salts=(1, 2)))
    records, transactions = [], []
    txid = first_txid
    for index, record_shape in enumerate(shape):
        time_us = 1_000_000 * (index + 1)
        frames = b""
        # Commit-time runs: some transactions of a record seen earlier than its time.
        runs = []
        for k in range(len(record_shape) - 1):
            if rnd.random() < 0.5:
                runs.append((txid + k, time_us - 1000 * (len(record_shape) - k)))
        times = iter(
            SpoolRecord(txid, txid + len(record_shape) - 1, time_us, None, None, 1, 1,
                        time_runs=tuple(runs)).commit_times()
        )  # fmt: skip
        for pages in record_shape:
            datas = [rnd.randbytes(page_size) for _ in pages]
            db_size = max(pages) + rnd.randrange(10)
            for i, (page, data) in enumerate(zip(pages, datas, strict=True)):
                frames += frame(page, db_size if i == len(pages) - 1 else 0, data)
            transactions.append(SegmentTransaction(next(times), db_size, pages, b"".join(datas)))
        # Positions are not used by the builder; the frame count and txids are.
        position = WalPosition(raw, WAL_HEADER_SIZE, (0, 0))
        count = len(record_shape)
        frame_count = sum(len(p) for p in record_shape)
        records.append(
            SpoolRecord(
                txid, txid + count - 1, time_us, position, position, 1, frame_count, frames,
                tuple(runs),
            )
        )  # fmt: skip
        txid += count
    buffer = ReusableBuffer(7)  # too small on purpose: it grows
    built = build_segment(records, buffer)
    expected = encode_segment(page_size, first_txid, transactions)
    assert bytes(built.payload) == expected
    decoded = decode_segment(expected)
    assert list(built.times_us) == list(decoded.commit_times_us)
    assert list(built.db_pages) == list(decoded.db_sizes_pages)
    assert (built.first_txid, built.last_txid, built.frame_count) == (
        decoded.first_txid,
        decoded.last_txid,
        decoded.frame_count,
    )
    # Building again into the same (now large enough) buffer gives the same bytes.
    assert bytes(build_segment(records, buffer).payload) == expected


@given(shapes, page_sizes, st.integers(0, 6), st.randoms(use_true_random=False))
def test_building_from_the_spool_equals_building_in_memory(shape, page_size, after, rnd):
    """Real WAL frames, spooled, then built by scatter reads from the spool files."""
    import tempfile
    from pathlib import Path

    from unit.engine.spool_builders import frames_after, wal_start

    from litetool.engine.spool.spool import Spool

    position = wal_start(page_size, (3, 4))
    records, txid = [], 1
    for index, record_shape in enumerate(shape):
        frames = []
        for pages in record_shape:
            db_size = max(pages) + rnd.randrange(5)
            frames += [
                (page, db_size if i == len(pages) - 1 else 0, rnd.randbytes(page_size))
                for i, page in enumerate(pages)
            ]
        data, end = frames_after(position, frames)
        count = len(record_shape)
        runs = tuple((txid + k, 1000 * index + k) for k in range(count - 1) if rnd.random() < 0.5)
        records.append(
            SpoolRecord(
                txid, txid + count - 1, 1000 * (index + 1), position, end,
                frames[-1][1], len(frames), data, runs,
            )
        )  # fmt: skip
        position, txid = end, txid + count
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp), max_bytes=1 << 30)
        spool.open()
        spool.rotate_bytes = 1  # a file per record: reads cross files
        for record in records:
            spool.append(record)
        wanted = [r for r in records if r.last_txid > after]
        located = spool.locate_after(after, max_bytes=1 << 30)
        try:
            if not wanted:
                assert located.records == []
                return
            built = build_segment_from_spool(located, ReusableBuffer(), ReusableBuffer(5))
            expected = build_segment(wanted, ReusableBuffer())
            assert bytes(built.payload) == bytes(expected.payload)
            assert list(built.times_us) == list(expected.times_us)
            assert list(built.db_pages) == list(expected.db_pages)
            assert built.first_txid == expected.first_txid
            assert built.frame_count == expected.frame_count
        finally:
            located.close()
            spool.close()
