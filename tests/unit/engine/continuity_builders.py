"""Builders for the continuity proof's unit tests: a database replicated by a
capture side and then stopped (cleanly or not), a start that proves continuity
over what it left, and the page digests of a database image computed without
litetool (XXH3-128 over the pages SQLite itself serializes)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import xxhash
from engine_builders import Log, database_settings, open_capture_side

from litetool.engine.capture.capture import Capture
from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.capture.fence import ReadFence
from litetool.engine.continuity.continuity import Seal, Verdict, prove, read_seal
from litetool.engine.continuity.page_digests import PageDigests, build_digests
from litetool.engine.spool.spool import Spool
from litetool.wal.header import WAL_HEADER_SIZE


def image_digests(conn: sqlite3.Connection) -> bytes:
    """The XXH3-128 digest of every page of the database image *conn* reads,
    joined in page order (16 bytes a page)."""
    image = conn.serialize()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    assert len(image) % page_size == 0
    return b"".join(
        xxhash.xxh3_128_digest(image[at : at + page_size]) for at in range(0, len(image), page_size)
    )


def wal_page_numbers(wal: Path, page_size: int) -> list[int]:
    """The page number of every frame in the WAL file, in order (read by hand)."""
    data = wal.read_bytes()
    stride = 24 + page_size
    return [
        struct.unpack_from(">I", data, at)[0]
        for at in range(WAL_HEADER_SIZE, len(data) - stride + 1, stride)
    ]


def database_config(db: Path):
    """The configuration of database *db* (replicated nowhere that is written to)."""
    return database_settings(db, [{"url": "memory://continuity"}])


def commit_rows(app: sqlite3.Connection, count: int, *, size: int = 300) -> None:
    """*count* transactions of the application, one new row each."""
    for _ in range(count):
        app.execute("INSERT INTO t VALUES (?)", (os.urandom(size),))


def change_page_size(app: sqlite3.Connection, page_size: int) -> None:
    """The application rebuilds its database with pages of *page_size* bytes
    (out of WAL mode for the VACUUM, then back)."""
    app.execute("PRAGMA journal_mode=DELETE")
    app.execute(f"PRAGMA page_size={page_size}")
    app.execute("VACUUM")
    app.execute("PRAGMA journal_mode=WAL")


def damage_page(db: Path, page: int, page_size: int) -> None:
    """16 bytes in the middle of page *page* of the file *db* overwritten in place."""
    with open(db, "r+b") as handle:
        handle.seek((page - 1) * page_size + page_size // 2)
        handle.write(b"\xa5" * 16)


@dataclass
class Replicated:
    """A database ``app.db`` replicated by a capture side, and the application's
    own connection (WAL mode, no automatic checkpoint: the application
    checkpoints only when a test says so)."""

    side: CaptureSide
    app: sqlite3.Connection
    logged: list[tuple[str, str, dict]] = field(default_factory=list)
    stopped: bool = False

    @property
    def db(self) -> Path:
        return self.side.db_path

    @property
    def spool_dir(self) -> Path:
        return self.side.spool.directory

    def commit_and_capture(self, count: int, *, size: int = 300) -> None:
        """*count* transactions, each captured on its own (one spool record each)."""
        for _ in range(count):
            commit_rows(self.app, 1, size=size)
            assert self.side.capture.capture_once() is not None

    def build_digests(self) -> PageDigests:
        """Build the page digests of the image at the captured txid, now."""
        capture = self.side.capture
        table = PageDigests.create(self.spool_dir, self.side.generation, capture.page_size)
        with capture.open_snapshot() as source:
            assert build_digests(table, source)
        self.side.keeper.digests = table
        return table

    def checkpoint_truncate(self) -> None:
        """litetool's own checkpoint of every captured frame, truncating the WAL."""
        self.side.capture.capture_once()
        result = self.side.checkpointer.checkpoint(truncate=True)
        assert result.complete and os.path.getsize(f"{self.db}-wal") == 0

    def stop(self, *, seal: bool) -> None:
        """Stop litetool: cleanly (the seal) or as if killed (no seal). The
        application's connection stays open."""
        if seal:
            self.side.keeper.seal_at_stop(self.side.capture, self.side.generation)
        self.side.close()
        self.stopped = True


@contextlib.contextmanager
def replicated(tmp_path: Path, *, rows: int = 40, **database_fields) -> Iterator[Replicated]:
    """A replicated database: *rows* rows before litetool opened it, 5 more
    transactions captured since. The capture side is closed (if the test did
    not stop it) and the application's connection with it."""
    log = Log()
    side, app = open_capture_side(
        tmp_path, "memory://continuity", log, rows=rows, **database_fields
    )
    app.execute("PRAGMA wal_autocheckpoint=0")
    state = Replicated(side, app, log.lines)
    try:
        state.commit_and_capture(5)
        yield state
    finally:
        if not state.stopped:
            side.close()
        app.close()


@dataclass
class Start:
    """What a start of litetool has open to prove continuity: the spool with its
    recovered position, the database behind a fresh read fence."""

    db: Path
    spool: Spool
    fence: ReadFence
    capture: Capture

    def prove(
        self,
        *,
        seal: Seal | None = None,
        digests: PageDigests | None = None,
        missing: str = "no page digests were saved",
    ) -> Verdict:
        return prove(
            self.capture.saved(),
            db_path=self.db,
            db_fd=self.fence.raw_fd("db"),
            wal_fd=self.fence.raw_fd("wal"),
            shm_fd=self.fence.raw_fd("shm"),
            seal=seal,
            digests=digests,
            digests_missing=missing,
            spool=self.spool,
        )

    def prove_by_saved_digests(self, *, seal: Seal | None = None) -> Verdict:
        """``prove`` with the page digests the spool saved (and *seal*), closed after."""
        digests = self.saved_digests()
        try:
            return self.prove(seal=seal, digests=digests)
        finally:
            digests.close()

    def saved_seal(self) -> Seal | None:
        return read_seal(self.spool.directory)

    def saved_digests(self) -> PageDigests:
        table, why = PageDigests.open(self.spool.directory)
        assert table is not None, why
        return table


@contextlib.contextmanager
def starting(db: Path, spool_dir: Path) -> Iterator[Start]:
    """Open the spool and the database as a start does, the position restored."""
    spool = Spool(spool_dir, max_bytes=1 << 30)
    state = spool.open()
    assert state is not None
    fence = ReadFence(db)
    fence.open()
    try:
        capture = Capture(db, spool, fence)
        capture.restore_state(state, spool.last)
        yield Start(db, spool, fence, capture)
    finally:
        fence.close()
        spool.close()
