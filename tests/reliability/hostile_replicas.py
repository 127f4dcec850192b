"""Replicas written byte by byte, for the hostile-input tests.

``base_replica`` writes a small but real ``file://`` replica: the image of a
real SQLite database (rollback journal mode, so the file is the whole
database) as the snapshot of record 0, and one real segment, built from the
pages a second transaction changed, in record 1. Everything else here writes
what litetool itself never would: raw segment payloads, index records and
manifests as plain JSON (no validation on the way), envelopes whose header
says what the test wants, and zstd "bombs" (a few KiB that decompress to
hundreds of MiB), compressed and hashed in pieces so that making one costs
the test no memory.

``run_restore`` runs ``litetool restore`` as a separate process with a time
limit and reports its exit code, output and peak RSS (``wait4``), so a
restore that blocks or balloons fails the test instead of the test run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import zstandard

from litetool.storage import (
    ObjectKind,
    index_record_key,
    new_generation_id,
    object_key,
)
from litetool.storage.format.envelope import MAGIC, decode_object, encode_object
from litetool.storage.format.json_fields import dump_json

REPO = Path(__file__).resolve().parents[2]
PAGE_SIZE = 4096
BASE_TIME_US = 1_764_040_000_000_000
_ENVELOPE = struct.Struct(">4sBBBBQ32s")
_SEGMENT_HEADER = struct.Struct(">IIQI")
_TRANSACTION = struct.Struct(">qII")


def database_states(path: Path) -> tuple[bytes, bytes]:
    """A real database before and after one more transaction (rollback journal mode:
    the file is the whole database)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    connection.execute("INSERT INTO t(v) VALUES (randomblob(3000)), (randomblob(6000))")
    before = path.read_bytes()
    connection.execute("INSERT INTO t(v) VALUES (randomblob(5000))")
    after = path.read_bytes()
    connection.close()
    return before, after


def changed_pages(before: bytes, after: bytes) -> list[int]:
    return [
        number
        for number in range(1, len(after) // PAGE_SIZE + 1)
        if before[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        != after[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    ]


# -- raw objects ---------------------------------------------------------------------------


def raw_segment(
    first_txid: int, transactions: list[tuple[int, int, list[tuple[int, bytes]]]]
) -> bytes:
    """A segment payload, no questions asked: per transaction its commit time, database
    size and ``(page number, page image)`` frames."""
    frames = [frame for _, _, txn_frames in transactions for frame in txn_frames]
    parts = [_SEGMENT_HEADER.pack(PAGE_SIZE, len(transactions), first_txid, len(frames))]
    parts += [_TRANSACTION.pack(t, size, len(f)) for t, size, f in transactions]
    parts += [struct.pack(">I", number) for number, _ in frames]
    parts += [image for _, image in frames]
    return b"".join(parts)


def put_object(root: Path, kind: ObjectKind, payload: bytes) -> tuple[str, int]:
    """Store *payload* enveloped at its content address; (digest, stored bytes)."""
    stored = encode_object(kind, payload)
    digest = blake3.blake3(stored).hexdigest()
    write(root / object_key(digest), stored)
    return digest, len(stored)


def put_record(root: Path, generation: str, seq: int, document: dict) -> str:
    """Store *document* (any JSON, unchecked) as index record *seq*; its key."""
    key = index_record_key(generation, seq)
    write(root / key, encode_object(ObjectKind.INDEX_RECORD, dump_json(document)))
    return key


def bomb(kind: ObjectKind, length: int) -> bytes:
    """An envelope whose payload is *length* zero bytes, zstd-compressed (the content
    size in the frame header) and digested in pieces: a few KiB for hundreds of MiB."""
    compressor = zstandard.ZstdCompressor(level=-1, write_content_size=True)
    stream = compressor.compressobj(size=length)
    hasher = blake3.blake3()
    piece = bytes(min(length, 8 << 20))
    body = []
    left = length
    while left:
        chunk = piece[: min(left, len(piece))]
        hasher.update(chunk)
        body.append(stream.compress(chunk))
        left -= len(chunk)
    body.append(stream.flush())
    header = _ENVELOPE.pack(MAGIC, 1, kind, 1, 0, length, hasher.digest())
    return header + b"".join(body)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)


def snapshot_json(manifest: str, txid: int, page_count: int, stored: int) -> dict:
    return {
        "manifest": manifest,
        "txid": txid,
        "time_us": BASE_TIME_US + txid * 1000,
        "page_size": PAGE_SIZE,
        "page_count": page_count,
        "bytes": stored,
    }


def segment_json(
    digest: str, first_txid: int, last_txid: int, stored: int, frames: int, db_pages: int
) -> dict:
    return {
        "object": digest,
        "first_txid": first_txid,
        "last_txid": last_txid,
        "bytes": stored,
        "page_size": PAGE_SIZE,
        "frames": frames,
        "first_time_us": BASE_TIME_US + first_txid * 1000,
        "last_time_us": BASE_TIME_US + last_txid * 1000,
        "max_time_us": BASE_TIME_US + last_txid * 1000,
        "db_pages": db_pages,
    }


def record_json(generation: str, seq: int, snapshots=(), segments=()) -> dict:
    document = {
        "format": 2,
        "generation": generation,
        "seq": seq,
        "created_us": BASE_TIME_US + seq,
        "writer": "hostile:1:test",
    }
    if seq == 0:
        document["reason"] = "first run"
    document["snapshots"] = list(snapshots)
    document["segments"] = list(segments)
    return document


def manifest_json(page_count: int, chunk_size: int, chunks: list[str]) -> bytes:
    return dump_json(
        {
            "txid": 0,
            "time_us": BASE_TIME_US,
            "page_size": PAGE_SIZE,
            "page_count": page_count,
            "chunk_size": chunk_size,
            "chunks": chunks,
        }
    )


# -- the base replica ----------------------------------------------------------------------


@dataclass
class Crafted:
    """A replica directory and what it holds."""

    root: Path
    generation: str
    before: bytes  # the image at txid 0 (the snapshot)
    after: bytes  # the image at txid 1 (snapshot + the segment)
    manifest: str = ""
    chunks: list[str] = field(default_factory=list)
    snapshot: dict = field(default_factory=dict)
    segment: str = ""
    segment_entry: dict = field(default_factory=dict)
    record_keys: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def write_record(self, seq: int, document: dict) -> str:
        key = put_record(self.root, self.generation, seq, document)
        if key not in self.record_keys:
            self.record_keys.append(key)
        return key


def snapshot_of(root: Path, image: bytes, txid: int, chunk_size: int = 2 * PAGE_SIZE) -> dict:
    """Store *image* as a snapshot (chunks, then the manifest); its index entry."""
    chunks, total = [], 0
    for start in range(0, len(image), chunk_size):
        chunk = image[start : start + chunk_size]
        digest, stored = put_object(root, ObjectKind.SNAPSHOT_CHUNK, chunk)
        chunks.append(digest)
        total += stored
    pages = len(image) // PAGE_SIZE
    document = json.loads(manifest_json(pages, chunk_size, chunks))
    document["txid"] = txid
    document["time_us"] = BASE_TIME_US + txid * 1000
    manifest, stored = put_object(root, ObjectKind.SNAPSHOT_MANIFEST, dump_json(document))
    return snapshot_json(manifest, txid, pages, total + stored)


def manifest_chunks(root: Path, manifest: str) -> list[str]:
    """The chunk digests a stored manifest names."""
    stored = (root / object_key(manifest)).read_bytes()
    return json.loads(decode_object("", stored, ObjectKind.SNAPSHOT_MANIFEST, None))["chunks"]


def base_replica(directory: Path) -> Crafted:
    """A valid replica: txid 0 (snapshot, record 0) and txid 1 (a segment, record 1)."""
    before, after = database_states(directory.with_name(directory.name + "-source.db"))
    root = directory
    root.mkdir(parents=True)
    (root / "litetool-replica.json").write_bytes(
        dump_json({"format": "litetool-replica", "version": 1})
    )
    crafted = Crafted(root, new_generation_id(BASE_TIME_US // 1000, 0x0BAD), before, after)
    crafted.snapshot = snapshot_of(root, before, 0)
    crafted.manifest = crafted.snapshot["manifest"]
    crafted.chunks = manifest_chunks(root, crafted.manifest)
    crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[crafted.snapshot]))
    numbers = changed_pages(before, after)
    frames = [(n, after[(n - 1) * PAGE_SIZE : n * PAGE_SIZE]) for n in numbers]
    payload = raw_segment(1, [(BASE_TIME_US + 1000, len(after) // PAGE_SIZE, frames)])
    crafted.segment, stored = put_object(root, ObjectKind.SEGMENT, payload)
    crafted.segment_entry = segment_json(
        crafted.segment, 1, 1, stored, len(frames), len(after) // PAGE_SIZE
    )
    crafted.write_record(1, record_json(crafted.generation, 1, segments=[crafted.segment_entry]))
    return crafted


# -- running a restore ---------------------------------------------------------------------


@dataclass
class Finished:
    code: int | None  # None: killed after the time limit
    stdout: str
    stderr: str
    max_rss_mb: float
    seconds: float


def run_restore(*argv: str, timeout: float = 60.0) -> Finished:
    """``python -m litetool restore ARGV`` in its own process, killed after *timeout*."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "litetool", "restore", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    code: int | None = None
    rss_kb = 0
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            rss_kb = usage.ru_maxrss
            break
        if time.monotonic() > deadline:
            process.kill()
            _, _, usage = os.wait4(process.pid, 0)
            rss_kb = usage.ru_maxrss
            break
        time.sleep(0.02)
    process.returncode = code if code is not None else -9  # reaped: Popen must not wait
    stdout = process.stdout.read() if process.stdout else ""
    stderr = process.stderr.read() if process.stderr else ""
    return Finished(code, stdout, stderr, rss_kb / 1024, time.monotonic() - started)


def files_below(directory: Path) -> set[str]:
    """Every path below *directory* (files, links, directories), relative."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def content(path: Path) -> list:
    """The rows of a restored (or crafted) database, after an integrity check."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return connection.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        connection.close()


def image_content(image: bytes, directory: Path) -> list:
    """The rows of a database image (written to a scratch file in *directory*)."""
    path = directory / f"image-{len(image)}-{hash(image) & 0xFFFF:04x}.db"
    path.write_bytes(image)
    try:
        return content(path)
    finally:
        path.unlink()
