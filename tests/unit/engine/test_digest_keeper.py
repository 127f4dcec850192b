"""The digest keeper: page digests built and moved forward while a database is
replicated, the spool's floor for them, and the seal of a clean stop.

Over a real database, capture side and spool; the digests the keeper keeps are
compared with XXH3-128 over the pages SQLite serializes.
"""

from __future__ import annotations

import time

import pytest
from continuity_builders import commit_rows, image_digests, replicated

from litetool.engine.capture import digest_keeper
from litetool.engine.capture.digest_keeper import seal_database
from litetool.engine.continuity.continuity import SEAL_CLOCK_MARGIN_NS, FileStat, read_seal
from litetool.engine.continuity.page_digests import FILE_NAME, PageDigests


def settled(keeper, txid: int) -> None:
    """Wait (bounded) until the keeper's background job has brought its digests
    to *txid*, then for the job itself to finish."""
    deadline = time.monotonic() + 10
    while keeper.digests is None or keeper.digests.txid != txid:
        assert time.monotonic() < deadline, "the digests did not reach the txid"
        time.sleep(0.002)
    keeper.stop()


def saved(spool_dir) -> tuple[int, int, bytes]:
    table, why = PageDigests.open(spool_dir)
    assert table is not None, why
    try:
        return table.txid, table.page_count, table.entries().tobytes()
    finally:
        table.close()


def test_maintain_builds_the_digests_of_the_image_and_holds_the_spool_for_them(tmp_path):
    with replicated(tmp_path) as r:
        keeper, capture, generation = r.side.keeper, r.side.capture, r.side.generation
        assert keeper.floor(generation) == []
        captured_before = capture.txid
        commit_rows(r.app, 2)  # not captured yet: the build captures them first
        calls = []
        keeper.maintain(capture, generation, lambda: calls.append(1))
        assert calls == [1] and capture.txid == captured_before + 2
        # Until the build is done, the spool keeps what comes after its txid.
        assert keeper.floor(generation) == [capture.txid]
        settled(keeper, capture.txid)
        expected = image_digests(r.app)
        assert keeper.digests.entries().tobytes() == expected
        assert keeper.floor(generation) == [capture.txid]
        assert keeper.floor("019ab8fa42009999") == []
        assert saved(r.spool_dir)[0] == capture.txid


def test_maintain_moves_the_digests_forward_when_enough_was_spooled_or_time_passed(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(digest_keeper, "DIGESTS_ADVANCE_SECONDS", 1e9)
    with replicated(tmp_path) as r:
        keeper, capture, generation = r.side.keeper, r.side.capture, r.side.generation
        keeper.maintain(capture, generation, lambda: None)
        built_at = capture.txid
        settled(keeper, built_at)
        r.commit_and_capture(3)
        keeper.maintain(capture, generation, lambda: None)  # little spooled, not yet due
        keeper.stop()
        assert keeper.digests.txid == built_at
        monkeypatch.setattr(digest_keeper, "DIGESTS_ADVANCE_BYTES", 0)
        keeper.maintain(capture, generation, lambda: None)
        settled(keeper, capture.txid)
        assert keeper.digests.entries().tobytes() == image_digests(r.app)
        r.commit_and_capture(2)
        monkeypatch.setattr(digest_keeper, "DIGESTS_ADVANCE_BYTES", 64 << 20)
        monkeypatch.setattr(digest_keeper, "DIGESTS_ADVANCE_SECONDS", 0.0)
        keeper.maintain(capture, generation, lambda: None)
        settled(keeper, capture.txid)
        assert keeper.digests.entries().tobytes() == image_digests(r.app)
        assert keeper.floor(generation) == [capture.txid]


def test_a_new_generation_drops_the_digests_and_the_next_maintain_builds_its_own(tmp_path):
    with replicated(tmp_path) as r:
        keeper, capture = r.side.keeper, r.side.capture
        keeper.maintain(capture, r.side.generation, lambda: None)
        settled(keeper, capture.txid)
        old = r.side.generation
        r.side.new_generation("a test wants one")
        assert keeper.digests is None and not (r.spool_dir / FILE_NAME).exists()
        assert keeper.floor(old) == [] and keeper.floor(r.side.generation) == []
        commit_rows(r.app, 1)
        keeper.maintain(capture, r.side.generation, lambda: None)
        settled(keeper, capture.txid)
        assert keeper.digests.generation == r.side.generation != old
        assert keeper.digests.entries().tobytes() == image_digests(r.app)


def test_no_digests_are_built_while_the_application_holds_the_write_lock(tmp_path):
    with replicated(tmp_path) as r:
        keeper = r.side.keeper
        r.app.execute("BEGIN IMMEDIATE")
        try:
            keeper.maintain(r.side.capture, r.side.generation, lambda: None)
        finally:
            r.app.execute("ROLLBACK")
        keeper.stop()
        assert keeper.digests is None and keeper.floor(r.side.generation) == []
        assert not (r.spool_dir / FILE_NAME).exists()


def test_dropped_digests_leave_the_disk_and_closed_ones_stay_for_the_next_start(tmp_path):
    with replicated(tmp_path) as r:
        keeper, capture = r.side.keeper, r.side.capture
        keeper.maintain(capture, r.side.generation, lambda: None)
        settled(keeper, capture.txid)
        expected = image_digests(r.app)
        keeper.close()
        assert saved(r.spool_dir) == (capture.txid, capture.db_size_pages, expected)
        keeper.digests, _ = PageDigests.open(r.spool_dir)
        keeper.drop()
        assert keeper.digests is None and keeper.floor(r.side.generation) == []
        assert PageDigests.open(r.spool_dir) == (None, "no page digests were saved")


# -- the seal of a clean stop ----------------------------------------------------------------


def test_a_clean_stop_captures_the_last_commits_and_seals_the_file_at_them(tmp_path):
    with replicated(tmp_path) as r:
        keeper, capture, generation = r.side.keeper, r.side.capture, r.side.generation
        r.build_digests()
        before = capture.txid
        commit_rows(r.app, 2)  # committed, not captured
        keeper.seal_at_stop(capture, generation)
        seal = read_seal(r.spool_dir)
        assert seal is not None
        assert (seal.generation, seal.txid) == (generation, before + 2)
        assert capture.txid == seal.txid
        assert seal.db == FileStat.of(r.db)
        assert not seal.db_complete  # the last commits are in the WAL only
        assert saved(r.spool_dir) == (seal.txid, capture.db_size_pages, image_digests(r.app))
        assert ("debug", "sealed") in [(level, event) for level, event, _ in r.logged]


@pytest.mark.parametrize("truncate", [True, False], ids=["truncated", "restarted"])
def test_a_stop_after_a_whole_checkpoint_seals_the_file_as_holding_the_image(tmp_path, truncate):
    with replicated(tmp_path) as r:
        r.side.capture.capture_once()
        result = r.side.checkpointer.checkpoint(truncate=truncate)
        assert result.complete
        r.side.keeper.seal_at_stop(r.side.capture, r.side.generation)
        seal = read_seal(r.spool_dir)
        assert seal is not None and seal.db_complete
        assert seal.db == FileStat.of(r.db)


def test_a_stop_while_the_application_holds_the_write_lock_seals_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(digest_keeper, "SEAL_LOCK_SECONDS", 0.05)
    with replicated(tmp_path) as r:
        r.build_digests()
        r.commit_and_capture(2)
        r.app.execute("BEGIN IMMEDIATE")
        try:
            r.side.keeper.seal_at_stop(r.side.capture, r.side.generation)
        finally:
            r.app.execute("ROLLBACK")
        assert read_seal(r.spool_dir) is None
        # The digests still reached the captured txid.
        assert saved(r.spool_dir)[0] == r.side.capture.txid
    warnings = [fields for level, event, fields in r.logged if event == "not sealed"]
    assert [w["reason"] for w in warnings] == ["the application held the write lock"]


def test_a_stop_with_digests_of_another_generation_seals_without_touching_them(tmp_path):
    with replicated(tmp_path) as r:
        table = PageDigests.create(r.spool_dir, "019ab8fa42009999", 4096)
        table.commit(1, 1)
        r.side.keeper.digests = table
        r.commit_and_capture(2)
        r.side.keeper.seal_at_stop(r.side.capture, r.side.generation)
        assert read_seal(r.spool_dir).txid == r.side.capture.txid
        assert saved(r.spool_dir)[:2] == (1, 1)


def test_seal_database_returns_once_the_clock_is_past_the_sealed_file_times(tmp_path):
    with replicated(tmp_path) as r:
        commit_rows(r.app, 1)
        r.app.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the file was just written
        seal = seal_database(r.side.capture)
        now = time.time_ns()
        assert seal is not None and seal.txid == r.side.capture.txid
        assert now >= max(seal.db.mtime_ns, seal.db.ctime_ns) + SEAL_CLOCK_MARGIN_NS
