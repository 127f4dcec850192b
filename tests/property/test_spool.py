"""The spool log: whatever a crash leaves, recovery keeps exactly the whole records.

Records hold real WAL frames (built with the WAL encoder, checksums chained
across records as capture produces them), so recovery's frame verification
is exercised for real.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.runtime.buffers import ReusableBuffer
from litetool.engine.spool.spool import Spool
from litetool.engine.spool.spool_codec import (
    HEADER_SIZE,
    SpoolRecord,
    WalPosition,
    decode_records,
    encode_record,
)
from litetool.engine.spool.spool_state import SpoolState, SpoolStateError
from litetool.wal.checksum import ByteOrder
from litetool.wal.encoder import encode_frames
from litetool.wal.header import WAL_HEADER_SIZE, encode_wal_header, new_wal_header

PAGE_SIZE = 512
FRAME_SIZE = 24 + PAGE_SIZE
STATE = SpoolState("0123456789abcdef", "first run", 1, PAGE_SIZE, 0, None, 1)

# Per record: the page counts of its transactions.
batches = st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=1, max_size=5)
byte_orders = st.sampled_from([ByteOrder.LITTLE, ByteOrder.BIG])


def build(shape: list[list[int]], byte_order: ByteOrder = ByteOrder.LITTLE) -> list[SpoolRecord]:
    """Records of consecutive transactions continuing one WAL."""
    header = new_wal_header(page_size=PAGE_SIZE, salts=(11, 22), byte_order=byte_order)
    raw = encode_wal_header(header)
    position = WalPosition(raw, WAL_HEADER_SIZE, header.checksum)
    out, txid, page = [], 0, 0
    for record_shape in shape:
        frames = []
        for pages in record_shape:
            for i in range(pages):
                page += 1
                commit = page if i == pages - 1 else 0
                frames.append((page, commit, bytes([page % 251]) * PAGE_SIZE))
        data, state = encode_frames(
            frames,
            page_size=PAGE_SIZE,
            salts=header.salts,
            checksum_state=position.checksum,
            byte_order=byte_order,
        )
        end = WalPosition(raw, position.offset + len(data), state)
        count = len(record_shape)
        # Commit-time runs for all but the last transaction of a batch of several.
        runs = tuple((txid + k, 900 + txid + k) for k in range(1, count))
        out.append(
            SpoolRecord(
                txid + 1, txid + count, 1000 + txid, position, end, page, len(frames), data, runs
            )
        )
        position, txid = end, txid + count
    return out


def same(decoded: list[SpoolRecord], expected: list[SpoolRecord]) -> bool:
    return [(r, bytes(r.frames)) for r in decoded] == [(r, bytes(r.frames)) for r in expected]


@given(batches, byte_orders)
def test_round_trip(shape, byte_order):
    built = build(shape, byte_order)
    data = b"".join(encode_record(r) for r in built)
    decoded, end = decode_records(data)
    assert end == len(data)
    assert [(r.first_txid, r.last_txid, r.position, bytes(r.frames)) for r in decoded] == [
        (r.first_txid, r.last_txid, r.position, bytes(r.frames)) for r in built
    ]


@given(batches, st.data())
def test_truncation_keeps_whole_records_only(shape, data):
    built = build(shape)
    encoded = [encode_record(r) for r in built]
    blob = b"".join(encoded)
    cut = data.draw(st.integers(0, len(blob)))
    decoded, end = decode_records(blob[:cut])
    whole = boundary = 0
    for chunk in encoded:
        if boundary + len(chunk) > cut:
            break
        boundary += len(chunk)
        whole += 1
    assert end == boundary
    assert [r.last_txid for r in decoded] == [r.last_txid for r in built[:whole]]


@given(batches, st.data())
def test_corruption_never_yields_a_wrong_record(shape, data):
    built = build(shape)
    blob = bytearray(b"".join(encode_record(r) for r in built))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= 1 << data.draw(st.integers(0, 7))
    decoded, _ = decode_records(bytes(blob))
    # A prefix of the truth, never garbage; the flipped record itself is cut.
    assert len(decoded) < len(built)
    assert [(r.last_txid, bytes(r.frames)) for r in decoded] == [
        (r.last_txid, bytes(r.frames)) for r in built[: len(decoded)]
    ]


@given(batches, st.integers(0, 12))
def test_locate_after_finds_whole_batches_from_the_right_one(shape, after):
    import tempfile
    from pathlib import Path

    built = build(shape)
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp), max_bytes=1 << 20)
        spool.open()
        for record in built:
            spool.append(record)
        located = spool.locate_after(after, max_bytes=1 << 30)
        try:
            got = [
                (record.first_txid, os.pread(fd, record.frames_bytes, offset))
                for record, (fd, offset, _path) in zip(
                    located.records, located.sources, strict=True
                )
            ]
        finally:
            located.close()
        expected = [r for r in built if r.last_txid > after]
        assert got == [(r.first_txid, bytes(r.frames)) for r in expected]
        spool.close()


def test_torn_append_is_cut_on_open(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.start_generation(STATE)
    built = build([[2, 1], [1], [3]])
    for record in built[:2]:
        spool.append(record)
    spool.close()
    path = next((tmp_path / "log").iterdir())
    with open(path, "ab") as handle:
        handle.write(encode_record(built[2])[:-7])  # a crash mid-append
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.open() == STATE
    assert reopened.last is not None and reopened.last.last_txid == built[1].last_txid
    assert os.path.getsize(path) == sum(r.header_size + len(r.frames) for r in built[:2])
    for after, first_txids in ((0, [1, 3]), (2, [3])):
        located = reopened.locate_after(after, max_bytes=1 << 30)
        located.close()
        assert [r.first_txid for r in located.records] == first_txids


def test_a_spool_of_another_format_is_discarded(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.start_generation(STATE)
    for record in build([[1], [2]]):
        spool.append(record)
    spool.close()
    state = (tmp_path / "state.json").read_text().replace('"spool_format": 3', '"spool_format": 2')
    (tmp_path / "state.json").write_text(state)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.open() is None
    assert reopened.last is None and list((tmp_path / "log").iterdir()) == []


def test_a_spool_record_whose_frames_changed_is_refused_by_the_segment_builder(tmp_path):
    from litetool.engine.sync.segment_build import build_segment_from_spool
    from litetool.errors import DatabaseError

    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    built = build([[1], [2, 1]])
    for record in built:
        spool.append(record)
    spool.close()
    path = next((tmp_path / "log").iterdir())
    data = bytearray(path.read_bytes())
    # The stored checksum of the very last frame (bytes 16..24 of its header).
    data[len(data) - FRAME_SIZE + 16] ^= 0xFF
    path.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()  # recovery verifies the chain: the last record is cut
    assert reopened.last is not None and reopened.last.last_txid == built[0].last_txid
    # Damage that recovery has not seen (after open) is caught when building.
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 4 + 3] ^= 0x01  # the first record's commit frame: database size
    path.write_bytes(bytes(data))
    located = reopened.locate_after(0, max_bytes=1 << 30)
    try:
        with pytest.raises(DatabaseError, match="do not match their header"):
            build_segment_from_spool(located, ReusableBuffer(), ReusableBuffer())
    finally:
        located.close()
        reopened.close()


def test_trim_drops_replicated_files_at_once_and_deletes_them_in_the_background(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 19)  # rotates every 64 KiB
    spool.open()
    spool.start_generation(STATE)
    built = build([[3, 3, 3]] * 40)  # about 190 KB of frames: three files or more
    for record in built:
        spool.append(record)
    log = tmp_path / "log"
    files = sorted(log.iterdir())
    assert len(files) >= 3
    before = spool.size_bytes
    first_file_size = files[0].stat().st_size
    first_file_last_txid = max(r.last_txid for r in decode_records(files[0].read_bytes())[0])
    assert spool.trim(first_file_last_txid) == first_file_size
    assert spool.size_bytes == before - first_file_size
    assert spool.first_txid == first_file_last_txid + 1
    spool.wait_for_trims()
    assert sorted(log.iterdir()) == files[1:]
    # Everything replicated: the file being appended to stays.
    spool.trim(built[-1].last_txid)
    located = spool.locate_after(built[-2].last_txid, max_bytes=1 << 30)
    try:
        assert [r.first_txid for r in located.records] == [built[-1].first_txid]
    finally:
        located.close()
    spool.close()  # waits for the deletions
    assert sorted(log.iterdir()) == files[-1:]


def test_rotation_never_waits_for_the_disk_and_sync_flushes_what_is_left(tmp_path, monkeypatch):
    """Appends (rotations included) issue no fdatasync; ``sync`` flushes every
    file appended to since the last one, except files every replica has."""
    flushed: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        flushed.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    spool = Spool(tmp_path, max_bytes=1 << 19)  # rotates every 64 KiB
    spool.open()
    spool.start_generation(STATE)
    built = build([[3, 3, 3]] * 41)
    for record in built[:-1]:
        spool.append(record)
    assert flushed == []
    files = sorted((tmp_path / "log").iterdir())
    assert len(files) >= 3
    inodes = [f.stat().st_ino for f in files]
    # Every replica has the first file: it leaves without a flush.
    first_last = max(r.last_txid for r in decode_records(files[0].read_bytes())[0])
    spool.trim(first_last)
    spool.sync()
    assert sorted(flushed) == sorted(inodes[1:])
    flushed.clear()
    spool.sync()  # nothing appended since
    assert flushed == []
    spool.append(built[-1])
    spool.close()  # flushes the file being appended to
    assert flushed == [inodes[-1]]
    reopened = Spool(tmp_path, max_bytes=1 << 19)
    reopened.open()
    assert reopened.last is not None and reopened.last.last_txid == built[-1].last_txid


@pytest.mark.parametrize("cut_fails", [False, True])
def test_an_append_that_fails_half_way_leaves_nothing_behind(tmp_path, monkeypatch, cut_fails):
    """A full disk: writev writes part of a record, then fails. The partial
    bytes are cut off (or, if even that fails, appends go on in a new file),
    so later appends and reads see whole records only, now and after reopening."""
    import errno

    from litetool.engine.spool import spool as spool_module
    from litetool.errors import DatabaseError

    built = build([[1], [2, 1], [1], [3]])
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.start_generation(STATE)
    spool.append(built[0])
    real_writev = os.writev

    def half_then_full(fd, buffers):
        real_writev(fd, [bytes(buffers[0])[: len(buffers[0]) // 2]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "writev", half_then_full)
    if cut_fails:

        def no_truncate(fd, length):
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(spool_module.os, "ftruncate", no_truncate)
    with pytest.raises(DatabaseError, match="No space left"):
        spool.append(built[1])
    monkeypatch.undo()
    for record in built[1:]:  # capture retries the same transactions
        spool.append(record)

    def spooled(s: Spool) -> list[tuple[int, bytes]]:
        located = s.locate_after(0, max_bytes=1 << 30)
        try:
            return [
                (record.first_txid, os.pread(fd, record.frames_bytes, offset))
                for record, (fd, offset, _path) in zip(
                    located.records, located.sources, strict=True
                )
            ]
        finally:
            located.close()

    expected = [(r.first_txid, bytes(r.frames)) for r in built]
    assert spooled(spool) == expected
    assert len(list((tmp_path / "log").iterdir())) == (2 if cut_fails else 1)
    spool.close()
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()
    assert spooled(reopened) == expected
    reopened.close()


# -- the spool's state (state.json) ----------------------------------------------------------

counts = st.integers(0, 1 << 62)
wal_positions = st.builds(
    WalPosition,
    st.binary(min_size=32, max_size=32),
    counts,
    st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)),
)
states = st.builds(
    SpoolState,
    st.text(max_size=20),
    st.text(max_size=40),
    counts,
    st.integers(512, 65536),
    counts,
    st.none() | wal_positions,
    counts,
)


@given(states)
def test_a_spool_state_survives_json(state):
    assert SpoolState.from_json(json.loads(json.dumps(state.to_json()))) == state


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(states, st.sampled_from(list(STATE.to_json())), json_values)
def test_a_damaged_spool_state_is_refused_by_name_or_read_as_written(state, field, value):
    """Any value in any field either reads back as a valid state or is refused
    with an error naming a field: never another exception, never a wrong type."""
    raw = state.to_json() | {field: value}
    try:
        read = SpoolState.from_json(raw)
    except SpoolStateError as exc:
        assert "field" in str(exc)
        return
    assert read.to_json()[field] == value or field in ("spool_format", "format")


def test_an_unreadable_spool_state_is_an_error_naming_the_file(tmp_path):
    from litetool.errors import DatabaseError

    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.start_generation(STATE)
    spool.close()
    raw = json.loads((tmp_path / "state.json").read_text())
    del raw["page_size"]
    (tmp_path / "state.json").write_text(json.dumps(raw))
    unreadable = r"state\.json is unreadable: field 'page_size' is missing or not a whole number$"
    with pytest.raises(DatabaseError, match=unreadable):
        Spool(tmp_path, max_bytes=1 << 20).open()
