"""Proving at a start that the live database continues the spooled position.

Each proof (the WAL's header and checksum, the seal, the page digests) is
driven directly over a real database, its real spool and the files a capture
side left when it stopped; the application's connection stays open (so
closing it never checkpoints behind the test's back) and changes the database
in the ways an application, or a person, can while litetool is not running.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest
from continuity_builders import (
    change_page_size,
    commit_rows,
    damage_page,
    image_digests,
    replicated,
    starting,
    wal_page_numbers,
)
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.continuity.continuity import (
    SEAL_CLOCK_MARGIN_NS,
    SEAL_FILE,
    FileStat,
    Seal,
    advance_digests,
    read_seal,
    remove_seal,
    wait_past,
    write_seal,
)
from litetool.engine.continuity.page_digests import PageDigests

PAGE = 4096

# -- the file's identity and the seal file ------------------------------------------------


def test_a_file_stat_is_what_the_system_says_and_none_for_a_missing_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    st_ = os.stat(path)
    stat = FileStat.of(path)
    assert stat == FileStat(st_.st_dev, st_.st_ino, 100, st_.st_mtime_ns, st_.st_ctime_ns)
    assert FileStat.of(tmp_path / "missing") is None


def test_a_write_after_waiting_past_the_stat_changes_it_even_at_the_same_size(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 4096)
    stat = FileStat.of(path)
    wait_past(stat)
    with open(path, "r+b") as handle:
        handle.write(b"b")  # same size, other content
    after = FileStat.of(path)
    assert after.size == stat.size and after.ino == stat.ino
    assert after.mtime_ns > stat.mtime_ns and after != stat


def test_wait_past_returns_once_the_clock_is_past_the_file_times_by_the_margin():
    now = time.time_ns()
    ahead = FileStat(1, 2, 3, now + 30_000_000, now + 10_000_000)
    wait_past(ahead)
    assert time.time_ns() >= ahead.mtime_ns + SEAL_CLOCK_MARGIN_NS


seals = st.builds(
    Seal,
    generation=st.text(min_size=0, max_size=20),
    txid=st.integers(min_value=0, max_value=2**63 - 1),
    db=st.builds(FileStat, *[st.integers(min_value=0, max_value=2**64 - 1)] * 5),
    db_complete=st.booleans(),
)


@given(seals)
def test_a_seal_survives_its_json_form(seal):
    assert Seal.from_json(json.loads(json.dumps(seal.to_json()))) == seal


def test_a_written_seal_reads_back_and_remove_takes_it_away(tmp_path):
    seal = Seal("019ab8fa42001234", 17, FileStat.of(tmp_path), True)
    write_seal(tmp_path, seal)
    assert read_seal(tmp_path) == seal
    assert sorted(p.name for p in tmp_path.iterdir()) == [SEAL_FILE]  # no temporary left
    newer = replace(seal, txid=18, db_complete=False)
    write_seal(tmp_path, newer)
    assert read_seal(tmp_path) == newer
    remove_seal(tmp_path)
    assert read_seal(tmp_path) is None and not (tmp_path / SEAL_FILE).exists()
    remove_seal(tmp_path)  # nothing to remove: no error


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"generation": "g", "txid": 1, "db_complete": true}',
        '{"generation": "g", "txid": "x", "db": {}, "db_complete": true}',
        '{"generation": "g", "txid": 1, "db": {"dev": 1}, "db_complete": true}',
        '{"generation": "g", "txid": 1, "db": {"dev": 1, "ino": 2, "size": 3, '
        '"mtime_ns": 4, "ctime_ns": 5, "other": 6}, "db_complete": true}',
    ],
    ids=["empty", "torn", "list", "no-db", "bad-txid", "short-db", "unknown-field"],
)
def test_a_seal_that_cannot_be_read_is_no_seal(tmp_path, text):
    (tmp_path / SEAL_FILE).write_text(text, encoding="utf-8")
    assert read_seal(tmp_path) is None


def test_no_seal_file_is_no_seal(tmp_path):
    assert read_seal(tmp_path) is None


# -- the seal and the WAL ---------------------------------------------------------------


def test_a_file_as_sealed_with_its_wal_continuing_resumes_by_the_seal(tmp_path):
    with replicated(tmp_path) as r:
        txid = r.side.capture.txid
        r.stop(seal=True)
        commit_rows(r.app, 3)  # appended to the same WAL: the file is untouched
        with starting(r.db, r.spool_dir) as start:
            seal = start.saved_seal()
            assert seal is not None and seal.txid == txid
            verdict = start.prove(seal=seal)
    assert verdict.resume and verdict.method == "seal"
    assert "the WAL continues the position" in verdict.reason
    assert verdict.wal.continues and verdict.wal.new_transactions == 3


def test_without_seal_or_digests_nothing_proves_and_the_reason_says_what_is_missing(tmp_path):
    with replicated(tmp_path) as r:
        r.stop(seal=False)
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove(missing="no page digests were saved")
    assert not verdict.resume and verdict.method == ""
    assert verdict.reason == (
        "cannot prove the database is unchanged since litetool stopped "
        "(the WAL continues the position; no page digests were saved)"
    )


def test_a_touched_file_no_longer_matches_its_seal(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.stop(seal=True)
        with starting(r.db, r.spool_dir) as start:
            seal = start.saved_seal()
            assert start.prove(seal=seal).method == "seal"
            os.utime(r.db)  # the same bytes, a new modification time
            assert FileStat.of(r.db) != seal.db
            refused = start.prove(seal=seal)
            by_digests = start.prove_by_saved_digests(seal=seal)
    assert not refused.resume
    assert "the WAL continues the position; no page digests were saved" in refused.reason
    assert by_digests.resume and by_digests.method == "digests"


@pytest.mark.parametrize(
    "other",
    [
        lambda seal: replace(seal, txid=seal.txid - 1),
        lambda seal: replace(seal, generation="019ab8fa42009999"),
    ],
    ids=["other-txid", "other-generation"],
)
def test_a_seal_of_another_position_proves_nothing(tmp_path, other):
    with replicated(tmp_path) as r:
        r.stop(seal=True)
        with starting(r.db, r.spool_dir) as start:
            seal = start.saved_seal()
            assert start.prove(seal=seal).resume
            verdict = start.prove(seal=other(seal))
    assert not verdict.resume and "no page digests were saved" in verdict.reason


def test_a_file_sealed_whole_resumes_by_the_seal_under_a_new_wal(tmp_path):
    with replicated(tmp_path) as r:
        r.checkpoint_truncate()
        r.stop(seal=True)
        idle = None
        with starting(r.db, r.spool_dir) as start:
            seal = start.saved_seal()
            assert seal.db_complete
            idle = start.prove(seal=seal)
        commit_rows(r.app, 4)  # a new WAL; the database file is not written
        with starting(r.db, r.spool_dir) as start:
            assert FileStat.of(r.db) == seal.db
            verdict = start.prove(seal=seal)
    assert idle.resume and idle.method == "seal"
    assert "held every transaction (the WAL was checkpointed and deleted or reset)" in idle.reason
    assert verdict.resume and verdict.method == "seal"
    assert verdict.wal.restarted and verdict.wal.new_transactions == 4
    assert "(the WAL was restarted)" in verdict.reason


def test_a_seal_that_says_the_file_lacked_wal_frames_needs_the_digests_under_a_new_wal(
    tmp_path,
):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.checkpoint_truncate()
        r.stop(seal=True)
        commit_rows(r.app, 2)
        with starting(r.db, r.spool_dir) as start:
            partial = replace(start.saved_seal(), db_complete=False)
            refused = start.prove(seal=partial)
            by_digests = start.prove_by_saved_digests(seal=partial)
    assert not refused.resume and "(the WAL was restarted; " in refused.reason
    assert by_digests.resume and by_digests.method == "digests"
    assert by_digests.wal.new_transactions == 2


# -- changes of the database file ----------------------------------------------------------


def test_a_page_size_change_is_refused_whatever_else_would_prove(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.stop(seal=True)
        change_page_size(r.app, 8192)
        assert r.app.execute("PRAGMA page_size").fetchone()[0] == 8192
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests(seal=start.saved_seal())
    assert not verdict.resume
    assert verdict.reason == (
        "the page size changed from 4096 to 8192 while litetool was not running"
    )


def _stopped_with_a_few_frames(r) -> int:
    """A database of a dozen pages, everything checkpointed into the file, then
    3 transactions left in the WAL, the digests at the position, a clean stop;
    the txid."""
    r.commit_and_capture(30, size=1500)
    r.checkpoint_truncate()
    r.commit_and_capture(3)
    r.build_digests()
    r.stop(seal=True)
    return r.side.capture.txid


def test_a_page_the_wal_does_not_cover_changed_in_place_is_named(tmp_path):
    with replicated(tmp_path) as r:
        txid = _stopped_with_a_few_frames(r)
        covered = set(wal_page_numbers(r.db.with_name("app.db-wal"), PAGE))
        pages = os.path.getsize(r.db) // PAGE
        uncovered = [p for p in range(2, pages + 1) if p not in covered]
        assert uncovered, "the test needs a page of the file no frame covers"
        changed = uncovered[-1]
        size = os.path.getsize(r.db)
        damage_page(r.db, changed, PAGE)
        assert os.path.getsize(r.db) == size
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests(seal=start.saved_seal())
    assert not verdict.resume
    assert verdict.reason == (
        "the database changed while litetool was not running (the WAL continues the "
        f"position; page {changed} differs from the replicated image at txid {txid})"
    )


def test_a_page_the_wal_covers_is_settled_by_the_wal_not_the_file(tmp_path):
    with replicated(tmp_path) as r:
        _stopped_with_a_few_frames(r)
        covered = sorted(set(wal_page_numbers(r.db.with_name("app.db-wal"), PAGE)))
        pages = os.path.getsize(r.db) // PAGE
        in_file = [p for p in covered if p <= pages]
        assert in_file, "the test needs a page of the file a frame covers"
        damage_page(r.db, in_file[-1], PAGE)
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests()
    assert verdict.resume and verdict.method == "digests"


def test_an_older_copy_of_the_same_size_is_refused_naming_the_first_page_that_differs(
    tmp_path,
):
    with replicated(tmp_path, rows=200) as r:
        r.checkpoint_truncate()
        older = r.db.read_bytes()
        r.app.execute("UPDATE t SET x = x || 'changed' WHERE rowid % 50 = 7")
        r.side.capture.capture_once()
        r.checkpoint_truncate()
        r.build_digests()
        txid = r.side.capture.txid
        r.stop(seal=True)
        current = r.db.read_bytes()
        assert len(current) == len(older) and current != older
        first = next(
            n + 1
            for n in range(len(older) // PAGE)
            if older[n * PAGE : (n + 1) * PAGE] != current[n * PAGE : (n + 1) * PAGE]
        )
        with open(r.db, "r+b") as handle:
            handle.write(older)  # the older copy put back
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests(seal=start.saved_seal())
    assert not verdict.resume
    assert verdict.reason == (
        "the database changed while litetool was not running (the WAL was checkpointed "
        f"and deleted or reset; page {first} differs from the replicated image at txid {txid})"
    )


def test_an_older_smaller_copy_is_refused_by_its_page_count(tmp_path):
    with replicated(tmp_path) as r:
        r.checkpoint_truncate()
        older = r.db.read_bytes()
        r.commit_and_capture(20, size=1000)
        r.checkpoint_truncate()
        r.build_digests()
        r.stop(seal=False)
        pages = os.path.getsize(r.db) // PAGE
        assert pages > len(older) // PAGE
        tmp = r.db.with_name("copy")
        tmp.write_bytes(older)
        os.replace(tmp, r.db)
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests()
    assert not verdict.resume
    assert f"it has {len(older) // PAGE} pages, the replicated image {pages}" in verdict.reason


def test_a_wal_whose_frame_at_the_position_was_rewritten_does_not_continue(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        offset = r.side.capture.position.offset
        r.stop(seal=True)
        wal = r.db.with_name("app.db-wal")
        # The running checksum of the frame before the position, bytes 16..24
        # of its header: other bytes than the ones captured.
        frame = offset - (24 + PAGE)
        with open(wal, "r+b") as handle:
            handle.seek(frame + 16)
            stored = handle.read(8)
            handle.seek(frame + 16)
            handle.write(bytes(b ^ 0xFF for b in stored))
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests(seal=start.saved_seal())
    assert not verdict.resume and not verdict.wal.continues
    assert "(the WAL was overwritten; " in verdict.reason


def test_a_wal_restarted_after_a_checkpoint_of_exactly_the_image_resumes_by_the_digests(
    tmp_path,
):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.stop(seal=True)
        busy, _, _ = r.app.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        assert busy == 0
        commit_rows(r.app, 2)
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests(seal=start.saved_seal())
    assert verdict.resume and verdict.method == "digests"
    assert verdict.wal.restarted and verdict.wal.new_transactions == 2
    assert verdict.reason == "every page matches the replicated image (the WAL was restarted)"


def test_a_new_wal_already_checkpointed_in_part_cannot_be_proven(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.stop(seal=False)
        r.app.execute("PRAGMA wal_checkpoint(RESTART)")
        commit_rows(r.app, 2)
        r.app.execute("PRAGMA wal_checkpoint(PASSIVE)")
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests()
    assert not verdict.resume
    assert verdict.reason == (
        "the database changed while litetool was not running (the WAL was restarted; "
        "the new WAL was already checkpointed, in part, into the database file)"
    )


def test_a_commit_checkpointed_before_the_wal_restarted_is_refused(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        txid = r.side.capture.txid
        r.stop(seal=False)
        r.app.execute("UPDATE t SET x = 'lost' WHERE rowid = 1")
        r.app.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests()
    assert not verdict.resume
    assert f"differs from the replicated image at txid {txid})" in verdict.reason


def test_a_wal_that_continues_over_a_checkpointed_file_resumes_by_the_digests(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.stop(seal=True)  # the application then checkpoints: the seal no longer holds
        commit_rows(r.app, 3)
        busy, log, done = r.app.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and log == done
        with starting(r.db, r.spool_dir) as start:
            seal = start.saved_seal()
            assert FileStat.of(r.db) != seal.db
            verdict = start.prove_by_saved_digests(seal=seal)
    assert verdict.resume and verdict.method == "digests"
    assert verdict.wal.continues and verdict.wal.new_transactions == 3
    assert verdict.reason == (
        "every page matches the replicated image (the WAL continues the position)"
    )


# -- the page digests brought to the position ----------------------------------------------


def test_digests_behind_the_spool_are_brought_to_the_position_then_prove(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        built_at = r.side.capture.txid
        r.commit_and_capture(4)
        txid = r.side.capture.txid
        expected = image_digests(r.app)
        r.side.keeper.close()
        r.side.keeper.digests = None
        r.stop(seal=False)
        with starting(r.db, r.spool_dir) as start:
            digests = start.saved_digests()
            try:
                assert digests.txid == built_at
                verdict = start.prove(digests=digests)
                moved = (digests.txid, digests.entries().tobytes())
            finally:
                digests.close()
            reopened = start.saved_digests()
            try:
                saved = (reopened.txid, reopened.entries().tobytes())
            finally:
                reopened.close()
    assert verdict.resume and verdict.method == "digests"
    assert moved == saved == (txid, expected)


def _prove_with_table(tmp_path, make):
    """Prove a killed stop's position with the table ``make(saved)`` returns."""
    with replicated(tmp_path) as r:
        r.stop(seal=False)
        with starting(r.db, r.spool_dir) as start:
            table = make(start)
            try:
                return start.prove(digests=table), start.capture.saved()
            finally:
                table.close()


def _table(start, *, generation=None, page_size=PAGE, txid=None, pages=None):
    saved = start.capture.saved()
    table = PageDigests.create(start.spool.directory, generation or saved.generation, page_size)
    table.commit(saved.txid if txid is None else txid, saved.db_pages if pages is None else pages)
    return table


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda s: _table(s, generation="019ab8fa42009999"),
            "the saved page digests belong to another generation",
        ),
        (lambda s: _table(s, page_size=8192), "the saved page digests have another page size"),
        (
            lambda s: _table(s, txid=s.capture.saved().txid + 1),
            "the saved page digests are newer than the spool",
        ),
        (
            lambda s: _table(s, pages=s.capture.saved().db_pages + 1),
            "the page digests count {pages_plus_one} pages, the spool {pages}",
        ),
    ],
    ids=["generation", "page-size", "newer", "page-count"],
)
def test_digests_that_cannot_describe_the_position_say_why(tmp_path, make, problem):
    verdict, saved = _prove_with_table(tmp_path, make)
    problem = problem.format(pages=saved.db_pages, pages_plus_one=saved.db_pages + 1)
    assert not verdict.resume
    assert verdict.reason == (
        "cannot prove the database is unchanged since litetool stopped "
        f"(the WAL continues the position; {problem})"
    )


def test_digests_the_trimmed_spool_cannot_bring_forward_say_so(tmp_path):
    # A small spool cap rotates the spool's files every 64 KiB.
    with replicated(tmp_path, **{"spool-max-bytes": 512 * 1024}) as r:
        r.build_digests()
        r.commit_and_capture(40, size=3000)  # several spool files
        assert len(list((r.spool_dir / "log").glob("*.spool"))) > 1
        r.side.spool.trim(r.side.capture.txid - 1)
        r.side.spool.wait_for_trims()
        r.side.keeper.close()
        r.side.keeper.digests = None
        r.stop(seal=False)
        with starting(r.db, r.spool_dir) as start:
            verdict = start.prove_by_saved_digests()
    assert not verdict.resume
    assert "(the WAL continues the position; the spool no longer holds what the page " \
        "digests need)" in verdict.reason  # fmt: skip


def test_digests_over_a_damaged_spool_say_what_the_spool_could_not_give(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        r.commit_and_capture(2)
        r.side.keeper.close()
        r.side.keeper.digests = None
        r.stop(seal=False)
        with starting(r.db, r.spool_dir) as start:
            # The spool's last file cut short after it was recovered.
            last = sorted((r.spool_dir / "log").glob("*.spool"))[-1]
            os.truncate(last, os.path.getsize(last) - PAGE)
            verdict = start.prove_by_saved_digests()
    assert not verdict.resume
    assert "the spool cannot bring the page digests up to date: frames end early" in (
        verdict.reason
    )


def test_advancing_the_digests_follows_the_image_transaction_by_transaction(tmp_path):
    with replicated(tmp_path, rows=120) as r:
        table = r.build_digests()
        start_txid = r.side.capture.txid
        images = {}
        for _ in range(3):
            r.commit_and_capture(1, size=2000)
            images[r.side.capture.txid] = image_digests(r.app)
        # A transaction that shrinks the database: the table shrinks with it.
        r.app.execute("DELETE FROM t WHERE rowid > 10")
        r.app.execute("VACUUM")
        r.side.capture.capture_once()
        shrunk_at = r.side.capture.txid
        images[shrunk_at] = image_digests(r.app)
        pages = r.app.execute("PRAGMA page_count").fetchone()[0]
        seen = {}
        for txid in sorted(images):
            advance_digests(table, r.side.spool, txid)
            seen[txid] = table.entries().tobytes()
            assert table.txid == txid
        advance_digests(table, r.side.spool, shrunk_at + 5)  # nothing more to apply
    assert start_txid < min(images)
    assert seen == images
    assert table.page_count == pages and len(images[shrunk_at]) == 16 * pages
