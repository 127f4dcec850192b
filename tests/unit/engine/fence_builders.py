"""Builders for the read fence's, the brake's, the snapshot's and the wake-up's
unit tests (imported as ``fence_builders``; this directory is on sys.path): a
real WAL database, an application that writes and checkpoints it from
another process, a capture over it, and the image SQLite itself gives of a
copy of its files."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from litetool.engine.capture.capture import Capture
from litetool.engine.capture.fence import ReadFence
from litetool.engine.spool.spool import Spool
from litetool.wal.header import WAL_HEADER_SIZE, frame_size, raw_page_size, raw_salts

PAGE = 1024  # not SQLite's default, so a page size read back is not a default


def grow(rows: int, size: int = 300) -> str:
    """SQL inserting *rows* rows of *size* random bytes in one transaction."""
    return (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        f"INSERT INTO t(data) SELECT randomblob({size}) FROM n"
    )


# Inserts, updates in place, deletes and overflow pages: five transactions of
# the application (statements for ``run_app``).
WORK = (
    grow(40),
    "UPDATE t SET data = randomblob(300) WHERE id % 5 = 0",
    "DELETE FROM t WHERE id % 7 = 0",
    grow(10, 3000),
    grow(20),
)


def make_db(path: Path, *, wal: bool = True, rows: int = 0) -> Path:
    """A database ``t(id INTEGER PRIMARY KEY, data BLOB)`` of ``PAGE``-byte pages
    holding *rows* rows, in WAL mode (or with a rollback journal). Closed, so
    its WAL was checkpointed and deleted."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={PAGE}")
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, data BLOB)")
    if rows:
        conn.execute(grow(rows))
    conn.close()
    return path


APP = textwrap.dedent(
    """
    import json, sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=float(sys.argv[2]))
    print("started", flush=True)
    statements = json.loads(sys.argv[3]) * int(sys.argv[4])
    out = [db.execute(sql).fetchall() for sql in statements]
    print(json.dumps(out), flush=True)
    """
)


def _app_command(
    db: Path, statements: tuple[str, ...], busy_timeout: float, repeat: int = 1
) -> list[str]:
    args = [str(db), str(busy_timeout), json.dumps(statements), str(repeat)]
    return [sys.executable, "-c", APP, *args]


def run_app(db: Path, *statements: str, busy_timeout: float = 5.0) -> list[list[list]]:
    """Run *statements* (each in autocommit) in another process, as the
    application; the rows each returned."""
    out = subprocess.run(
        _app_command(db, statements, busy_timeout), check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def app_checkpoint(db: Path, mode: str) -> tuple[int, int, int]:
    """The application's ``PRAGMA wal_checkpoint(mode)`` in another process, not
    waiting for any lock: (busy, WAL frames, frames checkpointed)."""
    return tuple(run_app(db, f"PRAGMA wal_checkpoint({mode})", busy_timeout=0)[0][0])


def start_app(db: Path, *statements: str, busy_timeout: float, repeat: int = 1) -> subprocess.Popen:
    """The application in another process, running *statements* (*repeat*
    times over) after it has connected (its first line of output says so);
    stop it with ``stop_app``."""
    proc = subprocess.Popen(
        _app_command(db, statements, busy_timeout, repeat), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    return proc


def stop_app(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def app_can_write(conn: sqlite3.Connection) -> bool:
    """Whether the application's connection (busy timeout 0) gets SQLite's
    write lock at once; it lets go of it again."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    conn.execute("ROLLBACK")
    return True


def wal_header(db: Path) -> bytes:
    with open(f"{db}-wal", "rb") as wal:
        return wal.read(WAL_HEADER_SIZE)


def wal_salts(db: Path) -> bytes:
    """The salts of the live WAL: they change when SQLite restarts it."""
    return raw_salts(wal_header(db))


def wal_frames_in_file(db: Path) -> int:
    """Frames the WAL file has room for (committed or not, of any cycle)."""
    size = Path(f"{db}-wal").stat().st_size
    return (size - WAL_HEADER_SIZE) // frame_size(raw_page_size(wal_header(db)))


def open_fence(db: Path, **kwargs) -> ReadFence:
    fence = ReadFence(db, **kwargs)
    fence.open()
    return fence


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database ``app.db`` holding 5 rows (see ``make_db``)."""
    return make_db(tmp_path / "app.db", rows=5)


@pytest.fixture
def fence(db: Path) -> Iterator[ReadFence]:
    """An open read fence on *db*, closed after the test."""
    fence = open_fence(db)
    yield fence
    fence.close()


@contextlib.contextmanager
def app_connection(db: Path) -> Iterator[sqlite3.Connection]:
    """The application's connection to *db* in this process (autocommit, no busy
    timeout); a transaction it left open is rolled back before it closes."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def open_capture(db: Path, spool_dir: Path) -> tuple[ReadFence, Spool, Capture]:
    """A fence, a spool and a capture over *db*, the generation's base taken
    now (what is committed now is txid 0)."""
    fence = open_fence(db)
    spool = Spool(spool_dir, max_bytes=1 << 30)
    spool.open()
    capture = Capture(db, spool, fence)
    spool.start_generation(capture.base_state("0123456789abcdef", "first run"))
    return fence, spool, capture


IMAGE = textwrap.dedent(
    """
    import shutil, sqlite3, sys
    from pathlib import Path
    db, copy = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.copyfile(db, copy)
    if Path(f"{db}-wal").exists():
        shutil.copyfile(f"{db}-wal", f"{copy}-wal")
    conn = sqlite3.connect(copy, isolation_level=None)
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    conn.close()
    """
)


def sqlite_image(db: Path, scratch: Path) -> bytes:
    """The database as SQLite itself sees it now: a copy of its file and WAL
    (no wal-index: SQLite recovers it from the WAL), checkpointed into the
    file by SQLite and closed. Call while no transaction is being written.

    The copy is made in another process, as every read of the database file
    or its ``-shm`` must be while litetool holds locks on it here: closing a
    descriptor of either in this process would drop SQLite's POSIX locks."""
    scratch.mkdir()
    copy = scratch / db.name
    subprocess.run([sys.executable, "-c", IMAGE, str(db), str(copy)], check=True)
    return copy.read_bytes()


READ = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"


def file_bytes(path: Path | str) -> bytes:
    """The bytes of *path*, read by another process (see ``sqlite_image``)."""
    return subprocess.run(
        [sys.executable, "-c", READ, str(path)], check=True, capture_output=True
    ).stdout
