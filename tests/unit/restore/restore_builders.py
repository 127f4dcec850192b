"""Builders for restore tests: replicas made from real SQLite database states.

``make_states`` runs random transactions on a rollback-journal database and
keeps the file image after each one. ``build_replica`` publishes them the way
the engine would: a snapshot of the first state in record 0, then segments
whose frames are the pages each transaction changed (with the commit time and
database size of each), and optional later snapshots. Restoring txid ``k``
must give back image ``k`` byte for byte.

Imported by the tests as ``restore_builders`` (their directory is on sys.path).
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from litetool.storage import (
    GenerationIndex,
    IndexRecord,
    Replica,
    SegmentDetail,
    SegmentEntry,
    SegmentTransaction,
    SnapshotEntry,
    encode_segment,
    new_generation_id,
)
from litetool.storage.generation_writer import GenerationWriter

PAGE_SIZE = 1024
BASE_TIME_US = 1_764_040_000_000_000


def make_states(path: Path, count: int, seed: int = 0, page_size: int = PAGE_SIZE) -> list[bytes]:
    """Database images after 0 (schema only) .. *count* random transactions: inserts of
    varied sizes, updates, deletes, and now and then a VACUUM that shrinks the file."""
    rng = random.Random(seed)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA page_size={page_size}")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, data BLOB)")
    states = [path.read_bytes()]
    next_id = 1
    for _ in range(count):
        action = rng.random()
        if action < 0.06 and next_id > 1:
            connection.execute("DELETE FROM t WHERE id % 3 = ?", (rng.randrange(3),))
            connection.execute("VACUUM")
        else:
            connection.execute("BEGIN")
            for _ in range(rng.randint(1, 4)):
                choice = rng.random()
                if choice < 0.6 or next_id == 1:
                    size = rng.choice((10, 200, 900, 3000))
                    connection.execute(
                        "INSERT INTO t(id, data) VALUES (?, ?)", (next_id, rng.randbytes(size))
                    )
                    next_id += 1
                elif choice < 0.85:
                    connection.execute(
                        "UPDATE t SET data = ? WHERE id = ?",
                        (rng.randbytes(rng.choice((5, 400))), rng.randrange(1, next_id)),
                    )
                else:
                    connection.execute("DELETE FROM t WHERE id = ?", (rng.randrange(1, next_id),))
            connection.execute("COMMIT")
        states.append(path.read_bytes())
    connection.close()
    return states


def changed_pages(before: bytes, after: bytes, page_size: int) -> list[int]:
    """1-based numbers of the pages of *after* that differ from *before* (or are new)."""
    numbers = []
    for number in range(1, len(after) // page_size + 1):
        start = (number - 1) * page_size
        if before[start : start + page_size] != after[start : start + page_size]:
            numbers.append(number)
    return numbers or [1]  # a commit has at least one frame


@dataclass
class BuiltReplica:
    replica: Replica
    generation: str
    first_txid: int
    images: dict[int, bytes]
    times_us: dict[int, int]
    segment_digests: list[str] = field(default_factory=list)
    snapshot_digests: list[str] = field(default_factory=list)


async def build_replica(
    replica: Replica,
    states: list[bytes],
    *,
    first_txid: int = 0,
    generation: str | None = None,
    segment_sizes: list[int] | None = None,
    snapshots_at: tuple[int, ...] = (),
    chunk_size: int = 4 * PAGE_SIZE,
    base_time_us: int = BASE_TIME_US,
    step_us: int = 1_000,
    page_size: int = PAGE_SIZE,
) -> BuiltReplica:
    """Publish *states* as one generation: state ``i`` is txid ``first_txid + i``.

    *segment_sizes*: transactions per segment (default 1 each, the rest in one);
    *snapshots_at*: txids of later snapshots (published after the segment holding them,
    so a snapshot may sit in the middle of a segment).
    """
    await replica.ensure_format(create=True)
    generation = generation or new_generation_id(base_time_us // 1000, 0x1234)
    times = {first_txid + i: base_time_us + i * step_us for i in range(len(states))}
    images = {first_txid + i: state for i, state in enumerate(states)}
    built = BuiltReplica(replica, generation, first_txid, images, times)
    created = iter(range(base_time_us, base_time_us + len(states) + 1))
    writer = GenerationWriter(replica, "test:1:restore", now_us=created.__next__)
    writer.start("first run", generation)

    async def snapshot_entry(txid: int):
        image = images[txid]
        chunks = [image[i : i + chunk_size] for i in range(0, len(image), chunk_size)]
        entry = await writer.put_snapshot(
            chunks,
            txid=txid,
            time_us=times[txid],
            page_size=page_size,
            page_count=len(image) // page_size,
            chunk_size=chunk_size,
        )
        built.snapshot_digests.append(entry.manifest_digest)
        return entry

    await writer.publish(snapshots=(await snapshot_entry(first_txid),))
    remaining = len(states) - 1
    sizes = list(segment_sizes or [])
    txid = first_txid + 1
    pending_snapshots = sorted(snapshots_at)
    while remaining > 0:
        size = min(sizes.pop(0) if sizes else 1, remaining)
        transactions = []
        for t in range(txid, txid + size):
            before, after = images[t - 1], images[t]
            numbers = changed_pages(before, after, page_size)
            pages = b"".join(after[(n - 1) * page_size : n * page_size] for n in numbers)
            transactions.append(
                SegmentTransaction(times[t], len(after) // page_size, numbers, pages)
            )
        entry = await writer.put_segment(
            encode_segment(page_size, txid, transactions),
            first_txid=txid,
            page_size=page_size,
            frames=sum(len(t.page_numbers) for t in transactions),
            detail=SegmentDetail.create(
                [t.commit_time_us for t in transactions], [t.db_size_pages for t in transactions]
            ),
            keep_detail=True,
        )
        built.segment_digests.append(entry.digest)
        txid += size
        remaining -= size
        due = [s for s in pending_snapshots if s < txid]
        pending_snapshots = [s for s in pending_snapshots if s >= txid]
        snapshots = tuple([await snapshot_entry(s) for s in due])
        await writer.publish(segments=(entry,), snapshots=snapshots)
    return built


# -- index records without any I/O (planner tests) -----------------------------------------


def digest_for(label: str) -> str:
    """A valid, distinct, deterministic digest per label (not a real hash)."""
    import hashlib

    return hashlib.sha256(label.encode()).hexdigest()


def snapshot_at(txid: int, time_us: int, stored_bytes: int = 100, label: str = "") -> SnapshotEntry:
    return SnapshotEntry(
        manifest_digest=digest_for(f"{label}snapshot{txid}"),
        txid=txid,
        time_us=time_us,
        page_size=4096,
        page_count=3,
        stored_bytes=stored_bytes,
    )


def segment_of(
    first_txid: int, times_us: list[int], stored_bytes: int = 10, label: str = ""
) -> SegmentEntry:
    return SegmentEntry.create(
        digest=digest_for(f"{label}segment{first_txid}"),
        first_txid=first_txid,
        stored_bytes=stored_bytes,
        page_size=4096,
        frames=len(times_us),
        times_us=times_us,
        db_pages=[3 + i for i in range(len(times_us))],
    )


def index_of(generation: str, snapshots, segments) -> GenerationIndex:
    record = IndexRecord(
        generation=generation,
        seq=0,
        created_us=0,
        writer="test",
        snapshots=tuple(snapshots),
        segments=tuple(segments),
        reason="first run",
    )
    return GenerationIndex.from_records(generation, [record])
