"""CommitClock: when each commit became visible in the wal-index.

A ``-shm`` file is written here the way SQLite writes its wal-index header
(two equal 48-byte copies; ``isInit`` at byte 12, ``mxFrame`` at 16, the
salts at 32), and the clock is watched: it must be read only once a new
commit is visible, never before (a time read first could precede a commit
landing in between, and so precede the transaction itself).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.capture.commit_clock import CommitClock
from litetool.wal.header import FRAME_HEADER_SIZE, WAL_HEADER_SIZE

PAGE_SIZE = 4096
FRAME = FRAME_HEADER_SIZE + PAGE_SIZE


def header(mx_frame: int, salts: bytes, *, init: bool = True) -> bytes:
    copy = bytearray(48)
    copy[12] = 1 if init else 0
    copy[16:20] = mx_frame.to_bytes(4, sys.byteorder)
    copy[32:40] = salts
    return bytes(copy)


class Shm:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.mx_frame = 0

    def close(self) -> None:
        os.close(self.fd)

    def publish(self, mx_frame: int, salts: bytes = b"saltsalt", *, torn: bool = False) -> None:
        first = header(mx_frame, salts)
        second = header(mx_frame + 1, salts) if torn else first
        os.pwrite(self.fd, first + second, 0)
        if not torn:
            self.mx_frame = mx_frame


@pytest.fixture(scope="module")
def shm_path(tmp_path_factory) -> Path:
    """One file for every example (a directory per example would pile up)."""
    return tmp_path_factory.mktemp("shm") / "db-shm"


def end_of(mx_frame: int) -> int:
    return WAL_HEADER_SIZE + mx_frame * FRAME


def test_the_clock_is_read_only_after_a_new_commit_is_visible(tmp_path):
    shm = Shm(tmp_path / "db-shm")
    clock = CommitClock()
    readings: list[int] = []

    def now_us() -> int:
        # what the wal-index says at the moment the clock is read
        readings.append(shm.mx_frame)
        return 1_000 + len(readings)

    shm.publish(3)
    assert clock.observe(shm.fd, PAGE_SIZE, now_us)
    assert readings == [3]
    assert not clock.observe(shm.fd, PAGE_SIZE, now_us)  # nothing new: no reading
    shm.publish(5, torn=True)  # being written: not seen, no reading
    assert not clock.observe(shm.fd, PAGE_SIZE, now_us)
    shm.publish(5)
    assert clock.observe(shm.fd, PAGE_SIZE, now_us)
    assert readings == [3, 5]
    assert clock.cut_after(b"saltsalt", end_of(3)) == (end_of(5), 1_002)


def test_an_uninitialised_or_missing_wal_index_is_not_a_commit(tmp_path):
    shm = Shm(tmp_path / "db-shm")
    clock = CommitClock()
    os.pwrite(shm.fd, header(4, b"saltsalt", init=False) * 2, 0)
    assert not clock.observe(shm.fd, PAGE_SIZE, lambda: 1)
    assert not clock.observe(-1, PAGE_SIZE, lambda: 1)
    assert not clock.observe(shm.fd, 0, lambda: 1)


@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.booleans()), min_size=1, max_size=40
    )
)
def test_cuts_follow_the_observed_commits(shm_path, steps):
    """Against a model: each observed (salts, end) with its reading; a restart
    (new salts) starts the frame count again."""
    shm_path.unlink(missing_ok=True)
    shm = Shm(shm_path)
    clock = CommitClock()
    model: list[tuple[bytes, int, int]] = []
    salts, mx_frame, now = b"salts-00", 0, 0
    for grow, restart in steps:
        if restart:
            salts = f"salts-{len(model) + 1:02d}".encode()[:8]
            mx_frame = 0
        mx_frame += grow
        now += 10
        shm.publish(mx_frame, salts)
        seen = clock.observe(shm.fd, PAGE_SIZE, lambda n=now: n)
        new = (salts, end_of(mx_frame))
        if seen:
            model.append((*new, now))
        else:  # unchanged since the last look
            assert model and model[-1][:2] == new
    for s in {m[0] for m in model}:
        for offset in {WAL_HEADER_SIZE, *[m[1] for m in model if m[0] == s]}:
            expected = next(((e, t) for ms, e, t in model if ms == s and e > offset), None)
            assert clock.cut_after(s, offset) == expected
            within = [(e, t) for ms, e, t in model if ms == s and offset < e <= offset + 3 * FRAME]
            assert clock.ends_within(s, offset, offset + 3 * FRAME) == within
    last_salts, last_end, _ = model[-1]
    clock.forget_through(last_salts, last_end)
    assert clock.cut_after(last_salts, WAL_HEADER_SIZE - 1) is None
    shm.close()


def test_time_runs_split_a_batch_at_the_observed_commit_ends(tmp_path):
    """Five one-frame transactions; commits seen after the 2nd (t=100) and the
    4th (t=200): txids 1-2 get 100, 3-4 get 200, and the 5th, not seen yet, 0
    (the capture's own time)."""
    from litetool.engine.spool.spool_codec import WalPosition
    from litetool.wal.checksum import ByteOrder
    from litetool.wal.encoder import encode_frames
    from litetool.wal.header import encode_wal_header, new_wal_header

    header = new_wal_header(page_size=PAGE_SIZE, salts=(0x73616C74, 0x73616C74))
    raw = encode_wal_header(header)
    frames, _ = encode_frames(
        [(n, n, bytes([n]) * PAGE_SIZE) for n in range(1, 6)],
        page_size=PAGE_SIZE,
        salts=header.salts,
        checksum_state=header.checksum,
        byte_order=ByteOrder.LITTLE,
    )
    shm = Shm(tmp_path / "db-shm")
    clock = CommitClock()
    for mx_frame, at in ((2, 100), (4, 200)):
        shm.publish(mx_frame, b"saltsalt")
        assert clock.observe(shm.fd, PAGE_SIZE, lambda at=at: at)
    position = WalPosition(raw, WAL_HEADER_SIZE, header.checksum)

    def time_runs():
        return clock.time_runs(
            memoryview(frames),
            WAL_HEADER_SIZE,
            5,
            position=position,
            page_size=PAGE_SIZE,
            txid=0,
            last_time_us=50,
        )

    assert time_runs() == (((2, 100), (4, 200)), 0)
    shm.publish(5, b"saltsalt")
    assert clock.observe(shm.fd, PAGE_SIZE, lambda: 300)
    assert time_runs() == (((2, 100), (4, 200)), 300)
    shm.close()
