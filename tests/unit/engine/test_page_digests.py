"""The page digests: XXH3-128 of every page of the replicated image, in a file.

What the table holds is compared with digests computed without litetool:
XXH3-128 over the pages SQLite serializes, or over the pages of WAL frames
read by hand.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import xxhash
from continuity_builders import image_digests, replicated
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.continuity.page_digests import (
    DIGEST_DTYPE,
    FILE_NAME,
    HEADER_SIZE,
    PageDigests,
    _decode_header,
    _encode_header,
    build_digests,
    digest_frames,
    digest_pages,
    page_digest,
)
from litetool.errors import DatabaseError
from litetool.wal.header import WAL_HEADER_SIZE

PAGE = 4096
GENERATION = "019ab8fa42001234"


def as_values(digests: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(digests), dtype=DIGEST_DTYPE)


# -- digests of pages ---------------------------------------------------------------------


@given(st.binary(max_size=3000), st.sampled_from([512, 1024]))
def test_digest_pages_hashes_each_whole_page_in_order(data, page_size):
    whole = len(data) // page_size
    expected = b"".join(
        xxhash.xxh3_128_digest(data[n * page_size : (n + 1) * page_size]) for n in range(whole)
    )
    assert digest_pages(data, page_size).tobytes() == expected
    for n in range(whole):
        page = data[n * page_size : (n + 1) * page_size]
        assert page_digest(page) == expected[16 * n : 16 * (n + 1)]


# -- the file's header ----------------------------------------------------------------------

generations = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=16
)
headers = st.tuples(
    generations,
    st.integers(min_value=-1, max_value=2**64 - 2),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=2**32 - 1),
)


@given(headers)
def test_a_header_decodes_to_what_was_encoded(fields):
    head = _encode_header(*fields)
    assert len(head) == HEADER_SIZE
    assert _decode_header(head) == fields


@given(headers, st.integers(min_value=0, max_value=43), st.integers(min_value=1, max_value=255))
def test_a_header_with_any_byte_changed_is_refused(fields, at, flip):
    head = bytearray(_encode_header(*fields))
    head[at] ^= flip
    assert _decode_header(bytes(head)) is None


@given(headers, st.integers(min_value=0, max_value=HEADER_SIZE - 1))
def test_a_short_header_is_refused(fields, length):
    assert _decode_header(_encode_header(*fields)[:length]) is None


# -- the table file -----------------------------------------------------------------------


def _random_values(count: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * count), dtype=DIGEST_DTYPE)


def test_a_committed_table_reopens_as_it_was_saved(tmp_path):
    table = PageDigests.create(tmp_path, GENERATION, PAGE)
    values = _random_values(3000)  # more than the first mapping holds
    table.set_range(1, values[:1000])
    table.set_range(1001, values[1000:])
    table.commit(42, 3000)
    table.close()
    reopened, why = PageDigests.open(tmp_path)
    assert why == "" and reopened is not None
    try:
        assert (reopened.generation, reopened.txid) == (GENERATION, 42)
        assert (reopened.page_size, reopened.page_count) == (PAGE, 3000)
        assert reopened.entries().tobytes() == values.tobytes()
    finally:
        reopened.close()


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=2500), st.binary(min_size=16, max_size=16)),
        max_size=40,
    )
)
def test_set_pages_keeps_the_last_digest_given_for_a_page(updates):
    with tempfile.TemporaryDirectory() as directory:
        table = PageDigests.create(Path(directory), GENERATION, PAGE)
        try:
            base = _random_values(2500)
            table.set_range(1, base)
            numbers = np.array([n for n, _ in updates], dtype=np.int64)
            table.set_pages(numbers, as_values([d for _, d in updates]))
            table.page_count = 2500  # entries() reads this many
            model = [base[n].tobytes() for n in range(2500)]
            for number, digest in updates:
                model[number - 1] = digest
            assert table.entries().tobytes() == b"".join(model)
        finally:
            table.close()


def test_a_table_not_yet_committed_is_incomplete(tmp_path):
    table = PageDigests.create(tmp_path, GENERATION, PAGE)
    table.set_range(1, _random_values(5))
    table.close()
    assert PageDigests.open(tmp_path) == (None, "the saved page digests are incomplete")


def test_entries_written_after_the_last_commit_leave_the_header_at_that_commit(tmp_path):
    table = PageDigests.create(tmp_path, GENERATION, PAGE)
    table.set_range(1, _random_values(8))
    table.commit(5, 8)
    newer = _random_values(2)
    table.set_pages(np.array([3, 9], dtype=np.int64), newer)  # then a crash
    table.close()
    reopened, _ = PageDigests.open(tmp_path)
    try:
        assert (reopened.txid, reopened.page_count) == (5, 8)
        assert reopened.entries()[2].tobytes() == newer[0].tobytes()
    finally:
        reopened.close()


def test_no_table_saved_says_so(tmp_path):
    assert PageDigests.open(tmp_path) == (None, "no page digests were saved")


def _saved_table(directory: Path, pages: int = 2000) -> Path:
    table = PageDigests.create(directory, GENERATION, PAGE)
    table.set_range(1, _random_values(pages))
    table.commit(7, pages)
    table.close()
    return directory / FILE_NAME


@pytest.mark.parametrize("at", [0, 5, 10, 24, 30, 34, 41])
def test_a_table_with_a_damaged_header_is_refused_not_trusted(tmp_path, at):
    path = _saved_table(tmp_path)
    with open(path, "r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0x10]))
    assert PageDigests.open(tmp_path) == (None, "the saved page digests are damaged")


def test_a_table_cut_short_is_refused_not_trusted(tmp_path):
    path = _saved_table(tmp_path, 2000)
    os.truncate(path, HEADER_SIZE + 1999 * 16)
    assert PageDigests.open(tmp_path) == (None, "the saved page digests are incomplete")
    os.truncate(path, 10)
    assert PageDigests.open(tmp_path) == (None, "the saved page digests are damaged")


def test_deleting_a_table_removes_its_file(tmp_path):
    table = PageDigests.create(tmp_path, GENERATION, PAGE)
    table.commit(0, 0)
    table.delete()
    assert not (tmp_path / FILE_NAME).exists()
    assert PageDigests.open(tmp_path) == (None, "no page digests were saved")


def test_a_new_table_replaces_the_saved_one(tmp_path):
    _saved_table(tmp_path)
    table = PageDigests.create(tmp_path, "019ab8fa42009999", PAGE)
    table.close()
    assert PageDigests.open(tmp_path) == (None, "the saved page digests are incomplete")


# -- built from an image, moved forward from WAL frames ---------------------------------------


def test_digests_built_from_a_snapshot_equal_the_digests_of_the_image_sqlite_reads(tmp_path):
    with replicated(tmp_path) as r:
        # Over 8 MiB: more than one piece of the image is read.
        r.commit_and_capture(6, size=1_500_000)
        r.checkpoint_truncate()
        # Some pages newer in the WAL than in the file.
        r.app.execute("UPDATE t SET x = 'new' WHERE rowid % 3 = 0")
        r.commit_and_capture(2)
        table = r.build_digests()
        expected = image_digests(r.app)
        pages = r.app.execute("PRAGMA page_count").fetchone()[0]
        assert pages * PAGE > 8 << 20
        assert (table.txid, table.page_count) == (r.side.capture.txid, pages)
        assert table.entries().tobytes() == expected
        assert table.generation == r.side.generation


def test_a_build_told_to_stop_commits_nothing(tmp_path):
    with replicated(tmp_path) as r:
        table = PageDigests.create(r.spool_dir, r.side.generation, PAGE)
        stop = threading.Event()
        stop.set()
        with r.side.capture.open_snapshot() as source:
            assert build_digests(table, source, stop=stop) is False
        assert table.txid == -1
        table.close()
        assert PageDigests.open(r.spool_dir) == (None, "the saved page digests are incomplete")


def _frames_by_hand(wal: Path, page_size: int) -> list[tuple[int, bytes]]:
    data = wal.read_bytes()
    stride = 24 + page_size
    return [
        (struct.unpack_from(">I", data, at)[0], data[at + 24 : at + stride])
        for at in range(WAL_HEADER_SIZE, len(data) - stride + 1, stride)
    ]


@pytest.mark.parametrize("limit", [None, 3], ids=["all-pages", "pages-past-the-count-left-out"])
def test_digest_frames_gives_the_newest_version_of_each_page(tmp_path, limit):
    with replicated(tmp_path) as r:
        r.checkpoint_truncate()
        # Over 8 MiB of frames (more than one piece), pages written many times.
        r.commit_and_capture(2, size=4_500_000)
        for _ in range(20):
            r.app.execute("UPDATE t SET x = randomblob(200) WHERE rowid = 1")
        wal = r.db.with_name("app.db-wal")
        frames = _frames_by_hand(wal, PAGE)
        assert len(frames) * (24 + PAGE) > 8 << 20
        page_count = limit or max(n for n, _ in frames)
        newest = {}
        for number, page in frames:
            if number <= page_count:
                newest[number] = xxhash.xxh3_128_digest(page)
        fd = os.open(wal, os.O_RDONLY)
        try:
            # Two runs of frames, as two spool records would give them.
            split = len(frames) // 3
            sources = [
                (fd, WAL_HEADER_SIZE, split),
                (fd, WAL_HEADER_SIZE + split * (24 + PAGE), len(frames) - split),
            ]
            numbers, digests = digest_frames(sources, PAGE, page_count)
        finally:
            os.close(fd)
    got = {}
    for number, digest in zip(numbers.tolist(), digests, strict=True):
        got[number] = digest.tobytes()  # a later entry is the newer
    assert got == newest


def test_digest_frames_refuses_frames_that_end_early(tmp_path):
    with replicated(tmp_path) as r:
        wal = r.db.with_name("app.db-wal")
        frames = len(_frames_by_hand(wal, PAGE))
        fd = os.open(wal, os.O_RDONLY)
        try:
            with pytest.raises(DatabaseError, match="frames end early"):
                digest_frames([(fd, WAL_HEADER_SIZE, frames + 1)], PAGE, 100)
        finally:
            os.close(fd)


def test_digest_frames_of_nothing_is_empty():
    numbers, digests = digest_frames([], PAGE, 10)
    assert len(numbers) == 0 and len(digests) == 0 and digests.dtype == DIGEST_DTYPE
