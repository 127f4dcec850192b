"""Capture from a live database written by another process, then rebuild it.

The rebuilt image (snapshot at the generation's base + every spooled segment,
pages applied in order) must hold exactly the rows the writer committed.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from unit.engine.engine_builders import checked_rows

from litetool.engine.capture.capture import Capture
from litetool.engine.capture.checkpoint import Checkpointer
from litetool.engine.capture.digest_keeper import seal_database
from litetool.engine.capture.fence import ReadFence
from litetool.engine.runtime.buffers import ReusableBuffer
from litetool.engine.spool.spool import Spool
from litetool.engine.sync.segment_build import build_segment_from_spool
from litetool.storage.format.segment import decode_segment
from litetool.wal.encoder import encode_frames
from litetool.wal.header import parse_wal_header

WRITER = textwrap.dedent(
    """
    import sqlite3, sys, os
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    start, count = int(sys.argv[2]), int(sys.argv[3])
    for i in range(start, start + count):
        db.execute("BEGIN")
        db.execute("INSERT INTO t(id, data) VALUES (?, ?)", (i, os.urandom(300 + i % 3000)))
        if i % 7 == 0:
            db.execute("DELETE FROM t WHERE id = ?", (i - 5,))
        db.execute("COMMIT")
    """
)


def run_writer(db: Path, start: int, count: int) -> None:
    subprocess.run([sys.executable, "-c", WRITER, str(db), str(start), str(count)], check=True)


def make_db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, data BLOB)")
    conn.close()


def rebuild(capture: Capture, spool: Spool, base: bytes, out: Path) -> int:
    image = bytearray(base)
    page_size = capture.page_size
    last = 0
    size = len(base) // page_size
    located = spool.locate_after(0, max_bytes=1 << 40)
    try:
        segments = []
        if located.records:  # every spooled transaction, in one segment
            built = build_segment_from_spool(located, ReusableBuffer(), ReusableBuffer())
            segments.append(decode_segment(bytes(built.payload)))
    finally:
        located.close()
    for segment in segments:
        assert segment.first_txid == last + 1
        for i, page_number in enumerate(segment.page_numbers):
            end = page_number * page_size
            if len(image) < end:
                image.extend(bytes(end - len(image)))
            image[end - page_size : end] = segment.page(i)
        last = segment.last_txid
        size = segment.db_sizes_pages[-1]
    out.write_bytes(bytes(image[: size * page_size]))
    return last


@pytest.fixture
def live(tmp_path):
    db = tmp_path / "app.db"
    make_db(db)
    run_writer(db, 1, 20)  # history before litetool starts: part of the base image
    fence = ReadFence(db)
    fence.open()
    spool = Spool(tmp_path / "spool", max_bytes=1 << 30)
    spool.open()
    capture = Capture(db, spool, fence)
    state = capture.base_state("0123456789abcdef", "first run")
    spool.start_generation(state)
    with capture.open_snapshot() as source:
        base = b"".join(source.read_chunk(i, 1 << 16) for i in range(source.chunk_count(1 << 16)))
        assert source.txid == 0
    yield db, fence, spool, capture, base
    fence.close()
    spool.close()


@pytest.fixture
def checkpointer(live):
    checkpointer = Checkpointer(live[3])
    yield checkpointer
    checkpointer.close()  # waits for a backfill in flight


def test_captures_every_transaction_across_checkpoints(live, checkpointer, tmp_path):
    db, _, spool, capture, base = live
    run_writer(db, 100, 150)
    batch = capture.capture_once()
    assert batch is not None and batch.first_txid == 1
    # Controlled checkpoint: the WAL restarts on the next write, nothing is lost.
    result = checkpointer.checkpoint(truncate=False)
    assert result.complete
    # Writers were held for the locked step only, which is part of the whole.
    assert 0 < result.locked_seconds <= result.seconds
    run_writer(db, 1000, 120)
    capture.capture_once()
    result = checkpointer.checkpoint(truncate=True)
    assert checkpointer.wal_frames() == 0  # nothing left: no checkpoint loop on an empty WAL
    run_writer(db, 2000, 80)
    capture.capture_once()
    last = rebuild(capture, spool, base, tmp_path / "rebuilt.db")
    assert last == capture.txid
    assert checked_rows(tmp_path / "rebuilt.db") == checked_rows(db)


def test_a_commit_frame_past_the_wal_index_is_not_captured(live, tmp_path):
    """Frames past the -shm index were never published as committed (a
    transaction in flight, or its writer died first): SQLite ignores them and
    writes over them, so capture must not take them, valid as they look."""
    db, _, spool, capture, base = live
    run_writer(db, 100, 30)
    capture.capture_once()
    position = capture.position
    header = parse_wal_header(position.header)
    forged, _ = encode_frames(
        [(1, capture.db_size_pages, b"\xee" * capture.page_size)],
        page_size=capture.page_size,
        salts=header.salts,
        checksum_state=position.checksum,
        byte_order=header.byte_order,
    )
    with open(f"{db}-wal", "r+b") as wal:
        wal.seek(position.offset)
        wal.write(forged)
    txid = capture.txid
    assert capture.capture_once() is None
    assert capture.txid == txid
    run_writer(db, 200, 30)  # SQLite writes its next frames over it
    capture.capture_once()
    assert rebuild(capture, spool, base, tmp_path / "rebuilt.db") == capture.txid
    assert checked_rows(tmp_path / "rebuilt.db") == checked_rows(db)


def test_closing_litetool_keeps_the_wal_and_resume_continues(live, tmp_path):
    db, fence, _spool, capture, base = live
    run_writer(db, 100, 30)
    capture.capture_once()
    # The application keeps a connection open (as servers do); otherwise its
    # last close would checkpoint and delete the WAL, forcing a new generation.
    app = sqlite3.connect(db)
    app.execute("SELECT 1 FROM t").fetchall()
    seal = seal_database(capture)  # as a clean stop does
    assert seal is not None and seal.txid == capture.txid
    fence.close()
    assert Path(f"{db}-wal").stat().st_size > 0  # litetool's close kept the WAL
    run_writer(db, 200, 10)  # written while litetool is away, WAL not restarted
    fence2 = ReadFence(db)
    fence2.open()
    spool2 = Spool(tmp_path / "spool", max_bytes=1 << 30)
    state = spool2.open()
    capture2 = Capture(db, spool2, fence2)
    capture2.restore_state(state, spool2.last)
    verdict = capture2.prove_continuity(seal, None, "no page digests")
    assert verdict.resume and verdict.method == "seal", verdict.reason
    assert verdict.wal.new_transactions == 10
    capture2.resume(verdict)
    rebuild(capture2, spool2, base, tmp_path / "rebuilt.db")
    assert checked_rows(tmp_path / "rebuilt.db") == checked_rows(db)
    fence2.close()
    app.close()


def test_application_truncate_while_away_loses_continuity(live, tmp_path):
    db, fence, _spool, capture, _base = live
    run_writer(db, 100, 30)
    capture.capture_once()
    fence.close()
    run_writer(db, 200, 10)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    run_writer(db, 300, 5)
    fence2 = ReadFence(db)
    fence2.open()
    spool2 = Spool(tmp_path / "spool", max_bytes=1 << 30)
    state = spool2.open()
    capture2 = Capture(db, spool2, fence2)
    capture2.restore_state(state, spool2.last)
    verdict = capture2.prove_continuity(None, None, "no page digests")
    assert not verdict.resume
    assert "the WAL was checkpointed and deleted" in verdict.reason, verdict.reason
    fence2.close()


def test_application_cannot_truncate_while_fence_held(live):
    db, _fence, _spool, capture, _base = live
    run_writer(db, 100, 30)
    conn = sqlite3.connect(db, timeout=0.2)
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    conn.close()
    assert busy == 1  # blocked by litetool's read mark; frames stay in the WAL
    batch = capture.capture_once()
    assert batch is not None and batch.last_txid == 30


CHECKPOINT = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    print(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0])
    """
)


def application_checkpoint_busy(db: Path) -> bool:
    """Whether another process's PASSIVE checkpoint (the application's
    automatic one) is turned away; fcntl locks never conflict within one."""
    out = subprocess.run(
        [sys.executable, "-c", CHECKPOINT, str(db)], check=True, capture_output=True, text=True
    )
    return out.stdout.strip() == "1"


def test_held_checkpoint_lock_turns_the_application_away_until_released(live, checkpointer):
    db, fence, _spool, capture, _base = live
    run_writer(db, 100, 30)
    capture.capture_once()
    assert not application_checkpoint_busy(db)
    fence.hold_checkpoints(True)
    assert application_checkpoint_busy(db)
    # litetool's own checkpoints still run, and the lock is held again after them
    # (SQLite's unlock at the end of one drops the process's lock).
    run_writer(db, 200, 30)
    capture.capture_once()
    result = checkpointer.checkpoint(truncate=False)
    assert result.complete
    assert application_checkpoint_busy(db)
    fence.hold_checkpoints(False)
    assert not application_checkpoint_busy(db)


def test_rounds_that_do_not_converge_brake_the_writer_until_the_checkpoint_is_done(
    live, checkpointer
):
    # The application writes more during each unlocked round than the round
    # backfilled: the capture side asks for braking (write-lock pulses) until
    # the checkpoint finishes under the lock.
    import concurrent.futures

    db, _fence, _spool, capture, _base = live

    def finish_round():
        concurrent.futures.wait([checkpointer._backfill])

    run_writer(db, 1000, 50)
    capture.capture_once()
    assert checkpointer.checkpoint_step(truncate=False) is None  # round 1
    finish_round()
    run_writer(db, 2000, 1500)  # more than LOCKED_TAIL_FRAMES during round 1
    capture.capture_once()
    assert checkpointer.checkpoint_step(truncate=False) is None  # round 2
    assert not checkpointer.braking  # one round behind is not yet a trend
    finish_round()
    run_writer(db, 4000, 2500)  # even more during round 2: not converging
    capture.capture_once()
    assert checkpointer.checkpoint_step(truncate=False) is None  # round 3
    assert checkpointer.braking
    finish_round()
    capture.capture_once()
    result = checkpointer.checkpoint_step(truncate=False)  # little left: the lock
    assert result is not None and result.complete
    assert not checkpointer.braking
