"""The spool's files on disk: what recovery keeps of files a crash or the disk
damaged, a new generation, appends across rotated files, trimming, and
reading ranges within a budget. (The record codec's properties, a torn tail
of one file and failing appends are tests/property/test_spool.py.)"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from spool_builders import spool_records
from sync_builders import spooled

from litetool.engine.spool.spool import Spool
from litetool.engine.spool.spool_codec import encode_record
from litetool.engine.spool.spool_state import SPOOL_FORMAT, SpoolState
from litetool.errors import DatabaseError

# A cap of 512 KiB rotates files every 64 KiB: eight records of two 4 KiB
# frames each, so the 60 transactions below fill four files.
CAP = 512 * 1024
RECORDS = spool_records(60, per_record=2)
STATE_G = SpoolState("g", "first run", 1, 4096, 0, None, 1)
STATE_H = SpoolState("h", "test", 2, 4096, 0, None, 1)


def expected(records) -> list[tuple[int, int, bytes]]:
    return [(r.first_txid, r.last_txid, bytes(r.frames)) for r in records]


def written_spool(directory, records=RECORDS) -> None:
    """A spool of generation ``g`` holding *records*, closed (synced)."""
    spool = Spool(directory, max_bytes=CAP)
    spool.open()
    spool.start_generation(STATE_G)
    for record in records:
        spool.append(record)
    spool.close()


def files(directory) -> list:
    return sorted((directory / "log").glob("*.spool"))


def reopened(directory) -> tuple[Spool, dict | None]:
    spool = Spool(directory, max_bytes=CAP)
    state = spool.open()
    return spool, state


def records_in_files(paths) -> list[list[int]]:
    """The first txid of each record, file by file, as a fresh spool of just
    those files reads them."""
    return [[first for first, _last, _frames in spooled_file(path)] for path in paths]


def spooled_file(path):
    from litetool.engine.spool.spool_codec import decode_records

    decoded, _end = decode_records(path.read_bytes())
    return [(r.first_txid, r.last_txid, bytes(r.frames)) for r in decoded]


# -- a spool as it was left ------------------------------------------------------------------


def test_a_spool_reopens_with_every_record_across_rotated_files_in_order(tmp_path):
    written_spool(tmp_path)
    paths = files(tmp_path)
    assert len(paths) >= 3
    # Each file is named by the first txid it holds, and the files continue each other.
    firsts = [int(path.stem, 16) for path in paths]
    assert [txids[0] for txids in records_in_files(paths)] == firsts
    spool, state = reopened(tmp_path)
    assert state == STATE_G
    assert spooled(spool) == expected(RECORDS)
    assert spool.first_txid == 1 and spool.last is not None and spool.last.last_txid == 60
    assert spool.last.frames == b""  # its position only
    assert spool.size_bytes == sum(path.stat().st_size for path in paths)
    spool.close()


def test_appends_after_recovery_continue_in_the_last_file(tmp_path):
    more = spool_records(62, per_record=2)
    written_spool(tmp_path)
    paths = files(tmp_path)
    spool, _state = reopened(tmp_path)
    assert paths[-1].stat().st_size < spool.rotate_bytes  # it has room
    spool.append(more[30])
    spool.close()
    assert files(tmp_path) == paths
    assert spooled_file(paths[-1])[-1][:2] == (61, 62)
    again, _ = reopened(tmp_path)
    assert spooled(again) == expected(more)
    again.close()


def test_a_fresh_spool_has_no_state_and_no_records(tmp_path):
    spool, state = reopened(tmp_path / "spool")
    assert state is None and spool.last is None and spool.first_txid is None
    assert (tmp_path / "spool" / "log").is_dir()
    assert spooled(spool) == [] and spool.size_bytes == 0
    spool.close()


def test_a_state_file_that_cannot_be_read_is_an_error_not_a_new_spool(tmp_path):
    written_spool(tmp_path)
    (tmp_path / "state.json").write_text('{"generation": "g", "page_si')  # torn by hand
    with pytest.raises(DatabaseError, match="unreadable"):
        reopened(tmp_path)
    assert len(files(tmp_path)) >= 3  # nothing was thrown away


# -- recovery of damaged files -----------------------------------------------------------------


def test_a_missing_file_cuts_the_chain_there_and_later_files_go(tmp_path):
    written_spool(tmp_path)
    paths = files(tmp_path)
    paths[1].unlink()  # lost: the files after it do not continue the first
    spool, state = reopened(tmp_path)
    assert state is not None and state == STATE_G
    kept = spooled_file(paths[0])
    assert spooled(spool) == kept
    assert files(tmp_path) == paths[:1]
    assert spool.last is not None and spool.last.last_txid == kept[-1][1]
    spool.close()


def test_a_damaged_record_in_the_middle_of_a_file_cuts_it_and_everything_after(tmp_path):
    written_spool(tmp_path)
    paths = files(tmp_path)
    first_file = spooled_file(paths[0])
    assert len(first_file) >= 4
    # Flip one byte in the frames of the file's third record.
    sizes = [r.header_size + len(r.frames) for r in RECORDS[: len(first_file)]]
    offset = sum(sizes[:2]) + sizes[2] // 2
    data = bytearray(paths[0].read_bytes())
    data[offset] ^= 0x40
    paths[0].write_bytes(bytes(data))
    spool, _state = reopened(tmp_path)
    assert spooled(spool) == expected(RECORDS[:2])
    assert files(tmp_path) == paths[:1]
    assert paths[0].stat().st_size == sum(sizes[:2])  # cut at the last whole record
    assert spool.size_bytes == sum(sizes[:2])
    spool.close()
    # Recovery is done once: a second open finds the same records.
    again, _ = reopened(tmp_path)
    assert spooled(again) == expected(RECORDS[:2])
    again.close()


def test_a_torn_last_record_of_a_file_drops_the_next_files_that_follow_it(tmp_path):
    written_spool(tmp_path)
    paths = files(tmp_path)
    in_first = len(spooled_file(paths[0]))
    size = paths[0].stat().st_size
    with open(paths[0], "r+b") as handle:
        handle.truncate(size - 100)  # the file's last record lost its end
    spool, _state = reopened(tmp_path)
    assert spooled(spool) == expected(RECORDS[: in_first - 1])
    assert files(tmp_path) == paths[:1]
    # Capture goes on from the last whole record: the next append continues it.
    spool.append(RECORDS[in_first - 1])
    spool.close()
    again, _ = reopened(tmp_path)
    assert spooled(again) == expected(RECORDS[:in_first])
    again.close()


def test_a_file_without_one_whole_record_is_removed(tmp_path):
    written_spool(tmp_path, RECORDS[:3])
    (path,) = files(tmp_path)
    # A new file whose first append was torn (kill -9 right after rotating).
    torn = path.with_name(f"{RECORDS[3].first_txid:016x}.spool")
    torn.write_bytes(encode_record(RECORDS[3])[:-1])
    garbage = path.with_name(f"{RECORDS[4].first_txid:016x}.spool")
    garbage.write_bytes(b"\x00" * 100)
    spool, _state = reopened(tmp_path)
    assert spooled(spool) == expected(RECORDS[:3])
    assert files(tmp_path) == [path]
    spool.close()


def test_a_file_after_a_gap_in_the_txids_goes_even_when_whole(tmp_path):
    written_spool(tmp_path, RECORDS[:3])
    (path,) = files(tmp_path)
    # Whole, valid records, but of txids after a gap (RECORDS[3] is missing).
    later = path.with_name(f"{RECORDS[4].first_txid:016x}.spool")
    later.write_bytes(encode_record(RECORDS[4]) + encode_record(RECORDS[5]))
    spool, _state = reopened(tmp_path)
    assert spooled(spool) == expected(RECORDS[:3])
    assert files(tmp_path) == [path]
    spool.close()


# -- generations -------------------------------------------------------------------------------


def test_a_new_generation_forgets_every_record_and_starts_new_files(tmp_path):
    written_spool(tmp_path)
    old_files = files(tmp_path)
    spool, _state = reopened(tmp_path)
    spool.start_generation(STATE_H)
    assert spool.last is None and spool.first_txid is None and spool.size_bytes == 0
    assert files(tmp_path) == []
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["spool_format"] == SPOOL_FORMAT and SpoolState.from_json(state) == STATE_H
    assert not (tmp_path / "state.tmp").exists()
    fresh = spool_records(4)
    for record in fresh:
        spool.append(record)
    spool.close()
    (new_file,) = files(tmp_path)
    assert new_file.name == f"{1:016x}.spool" and new_file in old_files  # same name, new bytes
    again, state = reopened(tmp_path)
    assert state is not None and state == STATE_H
    assert spooled(again) == expected(fresh)
    again.close()


# -- appending ---------------------------------------------------------------------------------


def test_a_record_whose_frames_do_not_match_its_frame_count_is_refused_unwritten(tmp_path):
    written_spool(tmp_path, RECORDS[:2])
    spool, _state = reopened(tmp_path)
    before = spool.size_bytes
    bad = RECORDS[2]
    with pytest.raises(ValueError, match="frame count"):
        spool.append(replace(bad, frames=bytes(bad.frames)[:-1]))
    assert spool.size_bytes == before
    assert spool.last is not None and spool.last.last_txid == RECORDS[1].last_txid
    spool.append(bad)
    spool.close()
    again, _ = reopened(tmp_path)
    assert spooled(again) == expected(RECORDS[:3])
    again.close()


# -- reading ranges ----------------------------------------------------------------------------


def test_a_range_keeps_to_its_budget_but_holds_at_least_one_record(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    one = RECORDS[0].header_size + len(RECORDS[0].frames)
    located = spool.locate_after(4, max_bytes=3 * one)
    located.close()
    # Records are whole batches: txid 5 is the first of the third record.
    assert [r.first_txid for r in located.records] == [5, 7, 9]
    assert located.left_out
    tiny = spool.locate_after(5, max_bytes=1)
    tiny.close()
    assert [r.first_txid for r in tiny.records] == [5] and tiny.left_out
    everything = spool.locate_after(0, max_bytes=1 << 40)
    everything.close()
    assert not everything.left_out and len(everything.records) == len(RECORDS)
    assert spool.locate_after(60, max_bytes=1 << 40).records == []
    spool.close()


def test_bytes_after_counts_to_its_limit_and_says_more(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    sizes = [r.header_size + len(r.frames) for r in RECORDS]
    assert spool.bytes_after(0, 1 << 40) == sum(sizes) == spool.size_bytes
    assert spool.bytes_after(58, 1 << 40) == sizes[-1]
    assert spool.bytes_after(60, 1 << 40) == 0
    limit = sizes[0] * 2
    assert spool.bytes_after(0, limit) > limit  # "more than that"
    spool.close()


def test_a_range_still_reads_files_trimmed_after_it_was_located(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    located = spool.locate_after(0, max_bytes=1 << 40)
    try:
        spool.trim(RECORDS[-2].last_txid)
        spool.wait_for_trims()
        assert len(files(tmp_path)) == 1
        read = [
            bytes(os.pread(fd, record.frames_bytes, offset))
            for record, (fd, offset, _path) in zip(located.records, located.sources, strict=True)
        ]
    finally:
        located.close()
    assert read == [bytes(r.frames) for r in RECORDS]
    spool.close()


def test_a_record_header_damaged_after_recovery_is_refused_when_located(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    path = files(tmp_path)[0]
    data = bytearray(path.read_bytes())
    data[8] ^= 0xFF  # inside the first record's header
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseError, match="damaged"):
        spool.locate_after(0, max_bytes=1 << 40)
    spool.close()


# -- trimming ----------------------------------------------------------------------------------


def test_a_file_whose_deletion_a_crash_prevented_is_trimmed_again(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    paths = files(tmp_path)
    first = paths[0].read_bytes()
    first_last = spooled_file(paths[0])[-1][1]
    freed = spool.trim(first_last)
    spool.close()
    assert freed == len(first) and files(tmp_path) == paths[1:]
    paths[0].write_bytes(first)  # the deletion never reached the disk
    again, _ = reopened(tmp_path)
    assert again.first_txid == 1  # it is back, and continued by the rest
    assert again.trim(first_last) == len(first)
    again.wait_for_trims()
    assert files(tmp_path) == paths[1:]
    kept = [r for r in RECORDS if r.last_txid > first_last]
    assert spooled(again) == expected(kept)
    again.close()


def test_trim_keeps_files_holding_anything_not_acked(tmp_path):
    written_spool(tmp_path)
    spool, _state = reopened(tmp_path)
    paths = files(tmp_path)
    first_last = spooled_file(paths[0])[-1][1]
    assert spool.trim(first_last - 1) == 0  # one transaction of the file still needed
    assert spool.trim(0) == 0
    spool.wait_for_trims()
    assert files(tmp_path) == paths
    spool.close()
