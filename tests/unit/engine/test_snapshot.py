"""A snapshot source over a real database: its chunks, put together, are the
image SQLite itself gives of the database at the snapshot's txid, however the
application writes and checkpoints after the snapshot was opened."""

from __future__ import annotations

import os

import pytest
from engine_builders import checked_rows
from fence_builders import (
    PAGE,
    WORK,
    app_checkpoint,
    grow,
    make_db,
    open_capture,
    run_app,
    sqlite_image,
    wal_frames_in_file,
    wal_salts,
)

from litetool.engine.capture.snapshot import SnapshotSource

# The snapshot format's chunks are whole pages (``chunk_size % page_size == 0``).
CHUNK_SIZES = (PAGE, 3 * PAGE, 1 << 20)


@pytest.fixture
def live(tmp_path):
    db = make_db(tmp_path / "app.db", rows=50)
    fence, spool, capture = open_capture(db, tmp_path / "spool")
    yield db, fence, capture
    fence.close()
    spool.close()


def read_image(source: SnapshotSource, chunk_size: int) -> bytes:
    chunks = [source.read_chunk(i, chunk_size) for i in range(source.chunk_count(chunk_size))]
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    return b"".join(chunks)


def app_keeps_going(db, fence) -> None:
    """The application writes and checkpoints, and litetool moves its fence on
    and backfills, all after the snapshot was opened."""
    run_app(db, *WORK)
    app_checkpoint(db, "PASSIVE")
    fence.advance()
    fence.backfill()
    run_app(db, *WORK, "PRAGMA wal_checkpoint(PASSIVE)")
    assert app_checkpoint(db, "TRUNCATE")[0] == 1  # the snapshot's reader holds on


def test_chunks_are_sqlites_image_at_the_txid_while_the_application_goes_on(live, tmp_path):
    db, fence, capture = live
    # Part of the history backfilled into the file, part only in the WAL.
    run_app(db, *WORK)
    capture.capture_once()
    fence.advance()
    fence.backfill()
    run_app(db, *WORK)
    capture.capture_once()
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        rows = checked_rows(db)
        assert source.txid == capture.txid == 2 * len(WORK)
        assert source.size_bytes == len(expected)
        first = source.read_chunk(0, 3 * PAGE)
        app_keeps_going(db, fence)
        for chunk_size in CHUNK_SIZES:
            assert read_image(source, chunk_size) == expected, chunk_size
        assert first == expected[: 3 * PAGE]
    image = tmp_path / "image.db"
    image.write_bytes(expected)
    assert checked_rows(image) == rows
    assert len(rows) > 50


def test_pages_only_in_the_wal_are_read_from_it(live, tmp_path):
    # Nothing was backfilled since the base: every page added is past the end
    # of the database file.
    db, fence, capture = live
    size_before = os.path.getsize(db)
    run_app(db, *WORK, *WORK)
    capture.capture_once()
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        assert source.size_bytes > size_before
        assert os.path.getsize(db) == size_before
        app_keeps_going(db, fence)
        assert read_image(source, PAGE) == expected


def test_a_snapshot_of_a_fully_checkpointed_wal_survives_its_restart(live, tmp_path):
    # The snapshot's reader sits where SQLite may restart the WAL, overwriting
    # its frames in place: the database file alone is the image.
    db, fence, capture = live
    run_app(db, *WORK)
    capture.capture_once()
    assert fence.checkpoint(capture.capture_tail, truncate=False).complete
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        salts = wal_salts(db)
        app_keeps_going(db, fence)
        assert wal_salts(db) != salts
        assert read_image(source, PAGE) == expected


def test_frames_left_from_before_a_restart_are_not_part_of_the_image(live, tmp_path):
    db, fence, capture = live
    run_app(db, *[grow(5)] * 30)  # the last leaf page, thirty times over
    capture.capture_once()
    assert fence.checkpoint(capture.capture_tail, truncate=False).complete
    old_frames = wal_frames_in_file(db)
    run_app(db, grow(1))  # restarts the WAL: a few frames written over the first
    capture.capture_once()
    assert 0 < capture.captured_frames() < old_frames == wal_frames_in_file(db)
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        app_keeps_going(db, fence)
        assert read_image(source, PAGE) == expected


def test_a_database_that_shrank_in_the_wal_ends_at_its_new_size(live, tmp_path):
    db, fence, capture = live
    run_app(db, *WORK, *WORK)
    capture.capture_once()
    assert fence.checkpoint(capture.capture_tail, truncate=False).complete
    run_app(db, "DELETE FROM t WHERE id > 10", "VACUUM")
    capture.capture_once()
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        rows = checked_rows(db)
        assert source.size_bytes == len(expected) < os.path.getsize(db)
        app_keeps_going(db, fence)
        assert read_image(source, 3 * PAGE) == expected
    image = tmp_path / "image.db"
    image.write_bytes(expected)
    assert checked_rows(image) == rows
    assert 0 < len(rows) <= 10


def test_a_snapshot_at_the_base_of_a_database_without_a_wal(live, tmp_path):
    db, fence, capture = live
    with capture.open_snapshot() as source:
        assert source.txid == 0
        expected = sqlite_image(db, tmp_path / "expected")
        app_keeps_going(db, fence)
        assert read_image(source, PAGE) == expected
    image = tmp_path / "image.db"
    image.write_bytes(expected)
    assert len(checked_rows(image)) == 50


def test_the_snapshots_reader_holds_checkpoints_at_its_txid_until_closed(live):
    db, fence, capture = live
    run_app(db, *WORK)
    capture.capture_once()
    fence.advance()  # past the base: the fence's mark no longer holds anything back
    source = capture.open_snapshot()
    at_snapshot = app_checkpoint(db, "PASSIVE")[1]
    assert at_snapshot == capture.captured_frames()
    run_app(db, *WORK)
    capture.capture_once()
    fence.advance()
    assert app_checkpoint(db, "PASSIVE")[2] == at_snapshot
    source.close()
    busy, frames, done = app_checkpoint(db, "PASSIVE")
    assert (busy, done) == (0, frames)
    assert frames > at_snapshot


@pytest.mark.parametrize("chunk_size", [1000, 3 * PAGE + 7])
def test_chunks_that_are_not_whole_pages_are_the_image_too(live, tmp_path, chunk_size):
    # ``read_chunk`` promises bytes [index * chunk_size, ...) of the image for
    # any chunk size: chunks that cut pages must put the WAL's pages together
    # as whole-page chunks do.
    db, _fence, capture = live
    run_app(db, *WORK)
    capture.capture_once()
    with capture.open_snapshot() as source:
        expected = sqlite_image(db, tmp_path / "expected")
        assert read_image(source, PAGE) == expected
        assert read_image(source, chunk_size) == expected
