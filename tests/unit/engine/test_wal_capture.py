"""Capture over a real database written by the application in another process:
what ``capture_once`` spools is exactly SQLite's own committed WAL frames,
whole transactions only, numbered and stamped; the database rebuilt from the
base image and every spooled frame is the image SQLite itself gives. The base
of a generation, a capture restored from its spool, a transaction larger than
a read batch, frames of a transaction in flight, and a WAL the application
restarts between captures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from capture_builders import (
    Application,
    frames_of,
    rebuild,
    records_of,
    wal_committed_end,
    wal_size,
)
from fence_builders import (
    PAGE,
    WORK,
    grow,
    make_db,
    open_fence,
    run_app,
    sqlite_image,
    wal_header,
    wal_salts,
)
from spool_builders import T0
from sync_builders import spooled

from litetool.engine.capture.capture import READ_BATCH_BYTES, Capture, ContinuityLost
from litetool.engine.spool.spool import Spool
from litetool.wal.header import WAL_HEADER_SIZE, encode_wal_header, new_wal_header

GENERATION = "0123456789abcdef"


class Clock:
    """A clock the test sets (seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Live:
    """A database, a spool and a capture over it, the base taken at open."""

    def __init__(self, tmp_path: Path, *, rows: int = 20, clock: Clock | None = None) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "app.db"
        if not self.db.exists():
            make_db(self.db, rows=rows)
        self.scratch = 0
        self.base = sqlite_image(self.db, self.next_scratch())
        self.fence = open_fence(self.db)
        self.spool = Spool(tmp_path / "spool", max_bytes=1 << 30)
        self.spool.open()
        self.clock = clock or Clock(T0 / 1e6)
        self.capture = Capture(self.db, self.spool, self.fence, clock=self.clock)
        self.state = self.capture.base_state(GENERATION, "first run")
        self.spool.start_generation(self.state)

    def next_scratch(self) -> Path:
        self.scratch += 1
        return self.tmp_path / f"scratch{self.scratch}"

    def image(self) -> bytes:
        """The image SQLite itself gives of the database now."""
        return sqlite_image(self.db, self.next_scratch())

    def spooled_frames(self) -> list:
        return [frame for _, _, data in spooled(self.spool) for frame in frames_of(data, PAGE)]

    def rebuilt(self) -> bytes:
        """The base image with every spooled frame applied."""
        return rebuild(self.base, self.spooled_frames(), PAGE)

    def close(self) -> None:
        self.fence.close()
        self.spool.close()


@pytest.fixture
def live(tmp_path):
    live = Live(tmp_path)
    yield live
    live.close()


def wal_bytes(db: Path, start: int, end: int) -> bytes:
    with open(f"{db}-wal", "rb") as wal:
        wal.seek(start)
        return wal.read(end - start)


def assert_whole_transactions(records, spooled_records) -> None:
    """Every record holds whole transactions: as many commit frames as txids,
    the last frame a commit frame; the records' txids follow on one another."""
    expected_first = records[0].first_txid
    for record, (first, last, data) in zip(records, spooled_records, strict=True):
        frames = frames_of(data, PAGE)
        assert (record.first_txid, record.last_txid) == (first, last)
        assert first == expected_first
        assert sum(1 for frame in frames if frame.commit_size) == last - first + 1
        assert frames[-1].commit_size == record.db_size_pages
        expected_first = last + 1


def test_committed_transactions_are_numbered_and_spooled_as_the_wals_own_frames(live):
    run_app(live.db, *WORK)
    batch = live.capture.capture_once()
    assert batch is not None
    end, db_pages = wal_committed_end(Path(f"{live.db}-wal"), PAGE)
    assert (batch.first_txid, batch.last_txid) == (1, len(WORK))
    assert batch.wal_bytes == end - WAL_HEADER_SIZE
    assert live.capture.position.offset == end
    assert live.capture.db_size_pages == db_pages
    # The frames spooled are SQLite's bytes, from the WAL's first frame to its last commit.
    [(first, last, data)] = spooled(live.spool)
    assert (first, last) == (1, len(WORK))
    assert data == wal_bytes(live.db, WAL_HEADER_SIZE, end)
    assert_whole_transactions(records_of(live.spool), spooled(live.spool))
    assert all(frame.salts == wal_salts(live.db) for frame in frames_of(data, PAGE))
    image = live.image()
    assert live.rebuilt() == image
    assert len(image) == db_pages * PAGE
    # Nothing new: nothing appended, the numbering stays.
    assert live.capture.capture_once() is None
    assert live.capture.txid == len(WORK)
    assert len(records_of(live.spool)) == 1


def test_txids_go_on_across_captures_and_each_capture_spools_only_what_is_new(live):
    for round_ in range(3):
        run_app(live.db, *WORK[: round_ + 1])
        before = live.capture.position
        batch = live.capture.capture_once()
        assert batch is not None
        assert batch.last_txid - batch.first_txid + 1 == round_ + 1
        record = records_of(live.spool)[-1]
        assert record.start.offset == (before.offset if before else WAL_HEADER_SIZE)
        assert batch.wal_bytes == record.position.offset - record.start.offset
    assert [(r.first_txid, r.last_txid) for r in records_of(live.spool)] == [(1, 1), (2, 3), (4, 6)]
    assert_whole_transactions(records_of(live.spool), spooled(live.spool))
    assert live.rebuilt() == live.image()


def test_each_transaction_carries_the_time_its_commit_was_first_seen(tmp_path):
    clock = Clock(T0 / 1e6)
    live = Live(tmp_path, clock=clock)
    try:
        assert live.state.created_us == T0
        run_app(live.db, grow(3))
        clock.now += 10
        assert live.capture.observe_commits()
        run_app(live.db, grow(3))
        clock.now += 10
        assert live.capture.observe_commits()
        assert not live.capture.observe_commits()  # nothing new since
        clock.now += 10
        batch = live.capture.capture_once()
        assert batch is not None and batch.time_us == T0 + 20_000_000
        [record] = records_of(live.spool)
        assert record.commit_times() == [T0 + 10_000_000, T0 + 20_000_000]
        # A commit never seen before the capture is stamped with the capture's time.
        run_app(live.db, grow(3))
        clock.now += 10
        batch = live.capture.capture_once()
        assert batch is not None and batch.time_us == T0 + 40_000_000
        assert records_of(live.spool)[-1].commit_times() == [T0 + 40_000_000]
    finally:
        live.close()


@pytest.mark.parametrize(
    ("given", "stamped"),
    [
        (T0 + 5_000_000, T0 + 5_000_000),  # between the last stamp and now: as given
        (T0 - 60_000_000, T0 + 1_000_000),  # before the last stamp: the last stamp
        (T0 + 3600_000_000, T0 + 10_000_000),  # in the future: now
    ],
)
def test_a_given_time_is_kept_between_the_last_stamp_and_now(tmp_path, given, stamped):
    clock = Clock(T0 / 1e6)
    live = Live(tmp_path, clock=clock)
    try:
        run_app(live.db, grow(3))
        clock.now += 1
        assert live.capture.capture_once().time_us == T0 + 1_000_000
        run_app(live.db, grow(3), grow(3))
        clock.now += 9
        batch = live.capture.capture_once(time_us=given)
        assert batch is not None and batch.time_us == stamped
        assert records_of(live.spool)[-1].commit_times() == [stamped, stamped]
        assert live.capture.last_time_us == stamped
    finally:
        live.close()


def test_batches_end_on_transaction_boundaries_when_transactions_straddle_them(live):
    # Three transactions of about 0.7 MiB each: a 1 MiB read cuts the second.
    run_app(live.db, grow(650, 700), grow(650, 700), grow(650, 700))
    batch = live.capture.capture_once()
    assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 3)
    records = records_of(live.spool)
    assert len(records) >= 2
    assert_whole_transactions(records, spooled(live.spool))
    assert live.rebuilt() == live.image()


def test_a_transaction_larger_than_a_read_batch_is_spooled_whole(live):
    run_app(live.db, grow(5), grow(1400, 900), grow(5))  # ~1.4 MiB in the middle one
    batch = live.capture.capture_once()
    assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 3)
    spooled_records = spooled(live.spool)
    assert_whole_transactions(records_of(live.spool), spooled_records)
    assert max(len(data) for _, _, data in spooled_records) > READ_BATCH_BYTES
    assert live.rebuilt() == live.image()


def test_a_huge_transaction_is_spooled_whole_and_its_buffer_is_let_go(live):
    run_app(live.db, grow(4500, 900))  # ~4.7 MiB of frames in one transaction
    batch = live.capture.capture_once()
    assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 1)
    assert batch.wal_bytes > 4 * READ_BATCH_BYTES
    [(_, _, data)] = spooled(live.spool)
    assert data == wal_bytes(live.db, WAL_HEADER_SIZE, live.capture.position.offset)
    assert live.capture._read_buffer.capacity <= 4 * READ_BATCH_BYTES
    assert live.rebuilt() == live.image()


def test_frames_of_a_transaction_in_flight_wait_for_its_commit(live):
    app = Application(live.db)
    try:
        app.run(grow(5))
        # A small page cache spills the open transaction's pages into the WAL.
        app.run("PRAGMA cache_size=10", "BEGIN", grow(300, 900))
        batch = live.capture.capture_once()
        assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 1)
        captured = live.capture.position.offset
        assert wal_size(live.db) - captured > 100 * (PAGE + 24)  # the uncommitted frames
        assert live.capture.capture_once() is None
        app.run("COMMIT")
        batch = live.capture.capture_once()
        assert batch is not None and (batch.first_txid, batch.last_txid) == (2, 2)
        assert records_of(live.spool)[-1].start.offset == captured
        assert live.rebuilt() == live.image()
    finally:
        app.close()


def test_the_base_is_what_is_committed_and_capture_starts_after_its_last_commit(tmp_path):
    db = make_db(tmp_path / "app.db", rows=20)
    app = Application(db)
    try:
        app.run(*WORK)  # committed, only in the WAL
        app.run("PRAGMA cache_size=10", "BEGIN", grow(300, 900))  # in flight
        end, db_pages = wal_committed_end(Path(f"{db}-wal"), PAGE)
        assert wal_size(db) > end
        live = Live(tmp_path)  # the base is taken now
        try:
            state = live.state
            assert (state.generation, state.reason, state.base_txid) == (
                GENERATION,
                "first run",
                0,
            )
            assert state.base_position.header == wal_header(db)
            assert state.base_position.offset == end
            assert state.base_db_pages == db_pages == len(live.base) // PAGE
            assert live.capture.txid == 0 and records_of(live.spool) == []
            assert live.capture.capture_once() is None
            app.run("COMMIT")
            batch = live.capture.capture_once()
            assert batch is not None and (batch.first_txid, batch.last_txid) == (1, 1)
            [record] = records_of(live.spool)
            assert record.start.offset == end
            assert live.rebuilt() == live.image()
        finally:
            live.close()
    finally:
        app.close()


def test_the_base_of_a_database_without_a_wal_is_its_file(tmp_path):
    live = Live(tmp_path, rows=30)
    try:
        assert live.state.base_position is None
        assert live.state.base_db_pages == os.path.getsize(live.db) // PAGE
        assert live.state.base_db_pages * PAGE == len(live.base)
        run_app(live.db, *WORK)
        assert live.capture.capture_once().first_txid == 1
        assert live.rebuilt() == live.image()
    finally:
        live.close()


@pytest.mark.parametrize("with_records", [True, False])
def test_a_capture_restored_from_its_spool_goes_on_where_the_last_one_stood(tmp_path, with_records):
    clock = Clock(T0 / 1e6)
    live = Live(tmp_path, clock=clock)
    app = Application(live.db)  # keeps the WAL while litetool is away
    try:
        app.run(grow(5))
        if with_records:
            app.run(*WORK)
            clock.now += 3
            live.capture.capture_once()
        before = live.capture
        live.fence.close()
        live.spool.close()
        spool = Spool(tmp_path / "spool", max_bytes=1 << 30)
        state = spool.open()
        live.spool, live.fence = spool, open_fence(live.db)
        capture = Capture(live.db, spool, live.fence, clock=clock)
        capture.restore_state(state, spool.last)
        live.capture = capture
        assert capture.generation == GENERATION and capture.page_size == PAGE
        assert (capture.txid, capture.position, capture.db_size_pages, capture.last_time_us) == (
            before.txid,
            before.position,
            before.db_size_pages,
            before.last_time_us,
        )
        assert capture.txid == (1 + len(WORK) if with_records else 0)
        app.run(grow(7))
        clock.now += 3
        batch = capture.capture_once()
        assert batch is not None
        assert batch.first_txid == before.txid + 1
        records = records_of(spool)
        assert records[0].first_txid == 1
        assert_whole_transactions(records, spooled(spool))
        assert live.rebuilt() == live.image()
    finally:
        app.close()
        live.close()


@pytest.mark.parametrize("truncate", [False, True])
def test_a_wal_the_application_restarts_is_followed_from_its_first_frame(live, truncate):
    run_app(live.db, *[grow(5)] * 20)
    live.capture.capture_once()
    assert live.fence.checkpoint(live.capture.capture_tail, truncate=truncate).complete
    old_salts, old_size = wal_salts(live.db), wal_size(live.db)
    assert live.capture.capture_once() is None
    run_app(live.db, grow(1), grow(2))  # the application's next write restarts the WAL
    assert wal_salts(live.db) != old_salts
    batch = live.capture.capture_once()
    assert batch is not None and (batch.first_txid, batch.last_txid) == (21, 22)
    position = live.capture.position
    assert position.header == wal_header(live.db)
    assert batch.wal_bytes == position.offset - WAL_HEADER_SIZE
    # The file still holds frames of the old cycle past the new ones: not spooled.
    assert wal_size(live.db) == (old_size if not truncate else position.offset)
    [*_, (first, last, data)] = spooled(live.spool)
    assert (first, last) == (21, 22)
    assert data == wal_bytes(live.db, WAL_HEADER_SIZE, position.offset)
    assert {frame.salts for frame in frames_of(data, PAGE)} == {wal_salts(live.db)}
    assert live.rebuilt() == live.image()


def test_a_wal_of_another_page_size_is_not_followed(live):
    run_app(live.db, grow(5))
    live.capture.capture_once()
    assert live.fence.checkpoint(live.capture.capture_tail, truncate=True).complete
    header = encode_wal_header(new_wal_header(page_size=4 * PAGE, salts=(1, 2)))
    with open(f"{live.db}-wal", "r+b") as wal:
        wal.write(header)
    with pytest.raises(ContinuityLost, match=f"from {PAGE} to {4 * PAGE}"):
        live.capture.capture_once()
    assert live.capture.txid == 1
