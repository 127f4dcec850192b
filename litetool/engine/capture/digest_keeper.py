"""Keeps the page digests near the captured txid, and seals at a clean stop.

The page digests (``litetool.engine.continuity.page_digests``) and the seal
(``litetool.engine.continuity.continuity``) are what the next start proves continuity
with. This keeper owns the digests of one database while it is replicated:
it builds them once per generation from a consistent image, moves them
forward from the spool in the background (every ``DIGESTS_ADVANCE_BYTES``
spooled or ``DIGESTS_ADVANCE_SECONDS``), tells the spool how far back it
must keep transactions for them (``floor``), gives way at the spool cap
(``drop``), and at a clean stop brings them to the last captured txid and
writes the seal (``seal_at_stop``).

It runs on the capture thread, its jobs on one background thread of its own;
the capture it works with is passed to each call (a replaced database file
gets a new one).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from litetool.engine.capture.capture import Capture, ContinuityLost
from litetool.engine.capture.snapshot import SnapshotSource
from litetool.engine.continuity.continuity import (
    FileStat,
    Seal,
    advance_digests,
    wait_past,
    write_seal,
)
from litetool.engine.continuity.page_digests import PageDigests, build_digests
from litetool.engine.runtime.memory import lower_thread_priority
from litetool.engine.spool.spool import Spool
from litetool.errors import DatabaseError, LitetoolError
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index

# The page digests move forward once this much was spooled after them, or
# this long after the last move with anything new (they are the spool's
# trim floor, so they bound what it keeps for them).
DIGESTS_ADVANCE_BYTES = 64 << 20
DIGESTS_ADVANCE_SECONDS = 10.0
# After a failed attempt to build or move the page digests, wait this long.
DIGESTS_RETRY_SECONDS = 5.0
# Building the digests needs SQLite's write lock for a moment: tried this long.
DIGESTS_LOCK_SECONDS = 0.05
# How long a clean stop waits for SQLite's write lock to seal the database file.
SEAL_LOCK_SECONDS = 2.0


class DigestKeeper:
    """The page digests of one replicated database (see the module docstring)."""

    def __init__(self, spool: Spool, db_path: Path, log: Callable[..., None]) -> None:
        self.spool = spool
        self.db_path = db_path
        self.log = log
        # The digests of the image at a captured txid; the background job that
        # builds or moves them; the txid a build holds in the spool until done.
        self.digests: PageDigests | None = None
        self._job: concurrent.futures.Future | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pin: int | None = None
        self._moved = 0.0
        self._moved_at_bytes = 0
        self._retry = 0.0
        self._cancel = threading.Event()

    def floor(self, generation: str | None) -> list[int]:
        """The txid the digests need the spool to keep transactions after (or none)."""
        if self._pin is not None:
            return [self._pin]
        digests = self.digests
        if digests is not None and digests.txid >= 0 and digests.generation == generation:
            return [digests.txid]
        return []

    def maintain(
        self, capture: Capture, generation: str | None, on_captured: Callable[[], None]
    ) -> None:
        """Build the digests of a new generation, then keep them near the captured
        txid, in the background. ``on_captured`` runs when opening the image for a
        build captured transactions (the replicas have more to send)."""
        job = self._job
        if job is not None:
            if not job.done():
                return
            self._job = None
            self._pin = None
            try:
                job.result()
            except Exception as exc:  # build again later; meanwhile only the seal proves
                self.log("warning", "page digests failed", error=f"{exc}")
                self.drop()
                self._retry = time.monotonic() + DIGESTS_RETRY_SECONDS
            return
        now = time.monotonic()
        digests = self.digests
        if digests is None or digests.generation != generation or digests.txid < 0:
            if now < self._retry or not generation:
                return
            before = capture.txid
            try:
                source = capture.open_snapshot(lock_timeout=DIGESTS_LOCK_SECONDS)
            except DatabaseError:
                self._retry = now + 1.0  # the application holds the write lock
                return
            if capture.txid != before:
                on_captured()
            self.drop()
            try:
                table = PageDigests.create(self.spool.directory, generation, source.page_size)
            except OSError as exc:
                source.close()
                self.log("warning", "page digests failed", error=exc.strerror)
                self._retry = now + DIGESTS_RETRY_SECONDS
                return
            self.digests = table
            self._pin = source.txid
            self._cancel.clear()
            self._job = self._executor().submit(self._build, table, source)
            return
        if digests.txid >= capture.txid:
            return
        # Cheap: bytes appended to the spool since the last move, not a walk of it.
        spooled = self.spool.appended_bytes - self._moved_at_bytes
        due = now - self._moved >= DIGESTS_ADVANCE_SECONDS
        if spooled <= DIGESTS_ADVANCE_BYTES and not due:
            return
        self._moved = now
        self._moved_at_bytes = self.spool.appended_bytes
        self._job = self._executor().submit(advance_digests, digests, self.spool, capture.txid)

    def stop(self) -> None:
        """Wait for the job in flight (a build gives up at its next chunk)."""
        self._cancel.set()
        job, self._job = self._job, None
        self._pin = None
        if job is not None:
            concurrent.futures.wait([job])
            if job.exception() is not None:
                self.drop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def drop(self) -> None:
        """Forget the digests (a new generation, a failure, the spool cap)."""
        self._cancel.set()
        job, self._job = self._job, None
        if job is not None:
            concurrent.futures.wait([job])
        self._pin = None
        digests, self.digests = self.digests, None
        if digests is not None:
            digests.delete()

    def close(self) -> None:
        """Stop; the digests stay on disk for the next start to prove continuity with."""
        self.stop()
        if self.digests is not None:
            self.digests.close()

    def seal_at_stop(self, capture: Capture, generation: str | None) -> None:
        """A clean stop: bring the digests to the last captured txid and seal the
        database file (``seal_database``), so the next start proves continuity
        without reading the database when nothing changed."""
        self.stop()
        digests = self.digests
        usable = digests is not None and digests.txid >= 0 and digests.generation == generation
        try:
            if usable:
                advance_digests(digests, self.spool, capture.txid)
            seal = seal_database(capture)
            if usable and seal is not None:
                advance_digests(digests, self.spool, seal.txid)
            if seal is None:
                self.log(
                    "warning",
                    "not sealed",
                    reason="the application held the write lock",
                    action="the next start reads every page to prove continuity",
                )
                return
            write_seal(self.spool.directory, seal)
            self.log("debug", "sealed", txid=seal.txid, db_complete=seal.db_complete)
        except (LitetoolError, OSError, ContinuityLost) as exc:
            self.log("warning", "not sealed", reason=f"{exc}")

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"digests:{self.db_path.name}",
                initializer=lower_thread_priority,
            )
        return self._pool

    def _build(self, table: PageDigests, source: SnapshotSource) -> None:
        try:
            build_digests(table, source, stop=self._cancel)
        finally:
            source.close()


def seal_database(capture: Capture) -> Seal | None:
    """Under the write lock, capture the last commits and describe the
    database file as litetool leaves it (``continuity.Seal``); None when
    the write lock cannot be had in time (the next start then reads pages)."""
    try:
        with capture.fence.write_locked(timeout=SEAL_LOCK_SECONDS):
            capture.capture_tail()
            stat = FileStat.of(capture.db_path)
            if stat is None or capture.generation is None:
                return None
            seal = Seal(capture.generation, capture.txid, stat, _wal_fully_checkpointed(capture))
            wait_past(stat)
            return seal
    except DatabaseError:
        return None


def _wal_fully_checkpointed(capture: Capture) -> bool:
    """Every committed frame of the live WAL is in the database file (or there is no WAL)."""
    header = capture.read_header()
    if header is None:
        return True
    shm = capture.fence.raw_fd("shm")
    if shm < 0:
        return False
    index = parse_wal_index(os.pread(shm, WAL_INDEX_READ_SIZE, 0))
    if index is None or not index.describes(header[1]):
        return False
    return index.fully_backfilled and capture.captured_frames() == index.mx_frame
