"""litetool.wal on real WALs written by sqlite3 in another process.

A writer process keeps its connection open (so SQLite neither checkpoints nor
deletes the WAL: ``wal_autocheckpoint=0``) and runs commands sent on stdin.
While it waits, the test copies the database file and its -wal, decodes the
WAL with litetool.wal, applies the committed transactions' pages to the
copied database file (later frames win; the file is cut or grown to the last
commit's db size), then checkpoints the original with sqlite3 and compares
the two files page by page.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from litetool.wal import (
    DecodedWal,
    StopReason,
    decode_wal,
    parse_database_header,
    read_transactions_reference,
)

WRITER = r'''
import random
import sqlite3
import sys

db_path, page_size, auto_vacuum = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = sqlite3.connect(db_path, isolation_level=None)
conn.execute(f"PRAGMA page_size={page_size}")
conn.execute(f"PRAGMA auto_vacuum={auto_vacuum}")
assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("PRAGMA synchronous=NORMAL")


def schema():
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL)")
    conn.execute("CREATE INDEX users_email ON users(email)")
    conn.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INT, amount INT, note TEXT)")
    conn.execute("CREATE TABLE files(id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    conn.execute("COMMIT")


def work(seed, count):
    """``count`` transactions mixing inserts, updates, deletes, overflow blobs and DDL."""
    rng = random.Random(seed)
    for number in range(count):
        conn.execute("BEGIN")
        kind = number % 5
        if kind == 0:
            conn.executemany(
                "INSERT INTO users(name, email, score) VALUES (?, ?, ?)",
                [(f"user{rng.random()}", f"{rng.getrandbits(40):x}@example.org", rng.random())
                 for _ in range(rng.randint(20, 200))],
            )
        elif kind == 1:
            conn.execute("UPDATE users SET score = score + ?, name = name || 'x' "
                         "WHERE id % ? = ?", (rng.random(), rng.randint(2, 7), rng.randint(0, 1)))
            conn.executemany(
                "INSERT INTO orders(user_id, amount, note) VALUES (?, ?, ?)",
                [(rng.randint(1, 500), rng.randint(1, 10**6), "n" * rng.randint(0, 300))
                 for _ in range(rng.randint(10, 100))],
            )
        elif kind == 2:
            conn.execute("DELETE FROM users WHERE id % ? = 0", (rng.randint(3, 9),))
            conn.execute("DELETE FROM orders WHERE amount < ?", (rng.randint(0, 200000),))
        elif kind == 3:
            conn.executemany(
                "INSERT INTO files(name, data) VALUES (?, ?)",
                [(f"f{rng.random()}", rng.randbytes(rng.randint(1, 40000)))
                 for _ in range(rng.randint(1, 6))],
            )
            conn.execute("DELETE FROM files WHERE id % 4 = ?", (rng.randint(0, 3),))
        else:
            conn.execute("CREATE TABLE IF NOT EXISTS scratch(v)")
            conn.executemany("INSERT INTO scratch VALUES (?)",
                             [(rng.randbytes(500),) for _ in range(50)])
            conn.execute("DROP TABLE scratch")
        conn.execute("COMMIT")


for line in sys.stdin:
    command, *args = line.split()
    if command == "schema":
        schema()
    elif command == "work":
        work(int(args[0]), int(args[1]))
    elif command == "checkpoint":
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0
    elif command == "spill":
        # A big transaction with a tiny page cache: SQLite spills uncommitted
        # frames into the WAL before the transaction ends.
        conn.execute("PRAGMA cache_size=8")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO files(name, data) VALUES ('spill', ?)",
                         [(bytes([n % 251]) * 30000,) for n in range(40)])
    elif command == "rollback":
        conn.execute("ROLLBACK")
        conn.execute("PRAGMA cache_size=-2000")
    elif command == "quit":
        break
    print("ok", flush=True)
conn.close()
'''


class Writer:
    """A sqlite3 writer in another process, driven one command at a time."""

    def __init__(self, script: Path, db: Path, page_size: int, auto_vacuum: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(db), str(page_size), auto_vacuum],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, command: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if reply.strip() != "ok":
            self.process.kill()
            _, stderr = self.process.communicate()
            raise AssertionError(f"writer failed on {command!r}: {stderr}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.communicate("quit\n", timeout=60)


@pytest.fixture
def start_writer(tmp_path: Path) -> Iterator:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writers: list[Writer] = []

    def start(page_size: int, auto_vacuum: str = "NONE") -> tuple[Writer, Path]:
        db = tmp_path / f"app-{page_size}-{auto_vacuum}.db"
        writer = Writer(script, db, page_size, auto_vacuum)
        writers.append(writer)
        return writer, db

    yield start
    for writer in writers:
        writer.close()


def copy_files(db: Path) -> tuple[bytes, bytes]:
    """The database file and its WAL, copied while the writer holds them open."""
    return db.read_bytes(), Path(f"{db}-wal").read_bytes()


def apply_wal(db_bytes: bytes, decoded: DecodedWal, wal: bytes) -> bytes:
    """Apply the committed transactions' pages, then size the file to the last commit."""
    assert decoded.header is not None
    page_size = decoded.header.page_size
    image = bytearray(db_bytes)
    for transaction in decoded.transactions:
        for page_number, page in transaction.iter_pages(wal):
            offset = (page_number - 1) * page_size
            if len(image) < offset:
                image.extend(bytes(offset - len(image)))
            image[offset : offset + page_size] = page
    if decoded.transactions:
        final_size = decoded.transactions[-1].db_size_after_commit * page_size
        del image[final_size:]
        image.extend(bytes(final_size - len(image)))
    return bytes(image)


def checkpointed(db: Path) -> bytes:
    """The original database after sqlite3 checkpoints the whole WAL into it."""
    conn = sqlite3.connect(db)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()
    return db.read_bytes()


def assert_same_pages(restored: bytes, original: bytes, page_size: int) -> None:
    assert len(restored) == len(original)
    for offset in range(0, len(original), page_size):
        assert restored[offset : offset + page_size] == original[offset : offset + page_size], (
            f"page {offset // page_size + 1} differs"
        )


def assert_sound_database(path: Path, image: bytes) -> None:
    path.write_bytes(image)
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def decode(wal: bytes) -> DecodedWal:
    decoded = decode_wal(wal)
    assert decoded == decode_wal(wal, reader=read_transactions_reference)
    return decoded


@pytest.mark.parametrize(
    ("page_size", "auto_vacuum"),
    [(4096, "NONE"), (1024, "FULL"), (16384, "NONE"), (65536, "INCREMENTAL")],
)
def test_applying_the_wal_equals_sqlite_checkpoint(start_writer, tmp_path: Path,
                                                   page_size: int, auto_vacuum: str) -> None:
    writer, db = start_writer(page_size, auto_vacuum)
    writer.run("schema")
    writer.run("work 1 30")
    db_bytes, wal = copy_files(db)

    decoded = decode(wal)
    assert decoded.header is not None
    assert decoded.header.page_size == page_size
    assert decoded.header.checksum_is_valid
    assert decoded.result.stop_reason is StopReason.END_OF_DATA
    assert decoded.result.end_offset == len(wal)
    assert len(decoded.transactions) == 31  # schema + 30 transactions, one commit each

    restored = apply_wal(db_bytes, decoded, wal)
    original = checkpointed(db)
    assert_same_pages(restored, original, page_size)
    header = parse_database_header(restored)
    assert header.page_size == page_size
    assert header.page_count == decoded.transactions[-1].db_size_after_commit
    assert header.is_wal_mode
    assert_sound_database(tmp_path / "restored.db", restored)


def test_restarted_wal_ends_at_the_old_frames(start_writer, tmp_path: Path) -> None:
    """After a full checkpoint the next commit rewrites the WAL from the top
    with new salts; frames of the previous cycle stay behind them."""
    writer, db = start_writer(2048)
    writer.run("schema")
    writer.run("work 2 40")
    first_cycle = decode(copy_files(db)[1])
    writer.run("checkpoint")
    writer.run("work 3 3")
    db_bytes, wal = copy_files(db)

    decoded = decode(wal)
    assert decoded.header is not None and first_cycle.header is not None
    assert decoded.header.checkpoint_seq == first_cycle.header.checkpoint_seq + 1
    assert decoded.header.salt1 == (first_cycle.header.salt1 + 1) & 0xFFFFFFFF
    assert len(decoded.transactions) == 3
    assert decoded.result.stop_reason is StopReason.SALT_MISMATCH
    assert decoded.result.stop_offset < len(wal)  # old frames follow

    restored = apply_wal(db_bytes, decoded, wal)
    assert_same_pages(restored, checkpointed(db), 2048)


def test_uncommitted_frames_are_not_a_transaction(start_writer, tmp_path: Path) -> None:
    writer, db = start_writer(4096)
    writer.run("schema")
    writer.run("work 4 10")
    writer.run("spill")  # a transaction is open and has written frames
    db_bytes, wal = copy_files(db)

    decoded = decode(wal)
    assert len(decoded.transactions) == 11
    assert decoded.result.uncommitted_frame_count > 0
    assert decoded.result.end_offset < decoded.result.stop_offset
    writer.run("rollback")
    restored = apply_wal(db_bytes, decoded, wal)
    assert_same_pages(restored, checkpointed(db), 4096)
