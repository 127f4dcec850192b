"""Replicas for the TUI tests (imported as ``replica_builders``; this directory is on sys.path).

``make_engine_replica``: a real replica written by ``litetool replicate`` in
another process while this process commits rows to a real SQLite database.
``write_fixed_replica``: index records with fixed ids and commit times, and
their segment objects (so the timeline can fetch their detail), for snapshot
tests whose pixels must not depend on the clock. No snapshot objects: these
replicas are for browsing and planning, not for restoring.
``write_long_replica``: one generation of many multi-transaction segments,
for tests of what the timeline fetches.
``spread_generation`` and ``write_records``: commits every 8 hours for months,
for the zoom levels, published all at once or record by record.
``repack_replica``: a copy of an engine replica whose segments are merged into
segments of several transactions (the engine's own grouping depends on timing).

Records read back from a replica are format 2: segment summaries, no detail.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from litetool.storage import (
    IndexRecord,
    ObjectKind,
    Replica,
    SegmentDetail,
    SegmentEntry,
    SegmentTransaction,
    SnapshotEntry,
    concat_segments,
    decode_segment,
    digest_hex,
    encode_object,
    encode_segment,
    new_generation_id,
)
from litetool.storage.generation_writer import GenerationWriter


@dataclass(frozen=True)
class EngineReplica:
    db_path: Path
    url: str
    rows: int  # rows committed, one transaction each, after the first snapshot
    pause_after: int  # rows committed before a pause of PAUSE_SECONDS


PAUSE_SECONDS = 1.0


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def make_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    return connection


def make_engine_replica(
    directory: Path, *, rows: int = 30, pause_after: int = 20, gap_seconds: float = 0.01
) -> EngineReplica:
    """Replicate a fresh database with ``litetool replicate`` in a child process while
    committing *rows* rows (``n`` = 0, 1, ...), one per transaction, with a pause after
    *pause_after* rows (two clusters of commits on the timeline); stop it with SIGINT."""
    db_path = directory / "app.db"
    replica_dir = directory / "replica"
    url = replica_dir.as_uri()
    connection = make_database(db_path)
    log = open(directory / "replicate.log", "wb")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [sys.executable, "-m", "litetool", "replicate", str(db_path), url, "--sync-interval", "0s"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        # The first snapshot (txid S, no rows yet) opens the generation.
        _wait(
            lambda: any((replica_dir / "generations").glob("*/index/*")),
            30,
            "the first index record",
        )
        for n in range(rows):
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
            time.sleep(PAUSE_SECONDS if n + 1 == pause_after else gap_seconds)
        time.sleep(0.3)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
            log.close()
            connection.close()
    assert child.returncode == 0, (directory / "replicate.log").read_text()
    return EngineReplica(db_path, url, rows, pause_after)


async def repack_replica(source_url: str, directory: Path, *, per_segment: int) -> str:
    """Copy the replica at *source_url* (one generation) to *directory*, merging
    consecutive segments until each holds at least *per_segment* transactions (the
    last may hold fewer), all snapshots in record 0. Restorable like the source;
    returns the new replica's URL."""
    source = Replica.open(source_url)
    (info,) = await source.index.list_generations()
    index = await source.index.load_generation(info.generation)
    url = directory.as_uri()
    replica = Replica.open(url)
    await replica.ensure_format(create=True)
    writer = GenerationWriter(replica, "repacked:1", now_us=lambda: index.records[0].created_us)
    writer.start(index.reason or "", info.generation)
    snapshots = []
    for snapshot in index.snapshots:
        manifest = await source.fetch_manifest(snapshot.manifest_digest, snapshot=snapshot)
        chunks = [
            await source.fetch_object(digest, ObjectKind.SNAPSHOT_CHUNK)
            for digest in manifest.chunks
        ]
        snapshots.append(
            await writer.put_snapshot(
                chunks,
                txid=manifest.txid,
                time_us=manifest.time_us,
                page_size=manifest.page_size,
                page_count=manifest.page_count,
                chunk_size=manifest.chunk_size,
            )
        )
    await writer.publish(snapshots=snapshots)
    runs: list[list[SegmentEntry]] = [[]]
    for segment in index.segments:
        if sum(s.transaction_count for s in runs[-1]) >= per_segment:
            runs.append([])
        runs[-1].append(segment)
    for run in (run for run in runs if run):
        payload = concat_segments(
            [await source.fetch_object(s.digest, ObjectKind.SEGMENT) for s in run]
        )
        segment = decode_segment(payload)
        entry = await writer.put_segment(
            payload,
            first_txid=segment.first_txid,
            page_size=segment.page_size,
            frames=segment.frame_count,
            detail=SegmentDetail.of(segment),
            keep_detail=True,
        )
        await writer.publish(segments=[entry])
    return url


def restored_rows(path: Path) -> list[int]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [n for (n,) in connection.execute("SELECT n FROM t ORDER BY id")]
    finally:
        connection.close()


# -- deterministic replicas for snapshots ---------------------------------------------------

BASE_TIME_US = 1_764_040_000_000_000  # 2025-11-25 03:06:40 UTC
PAGE_SIZE = 4096


def _digest(label: str) -> str:
    return (label.encode().hex() + "0" * 64)[:64]


def segment_payload(first_txid: int, times_us: list[int], db_pages: list[int]) -> bytes:
    """A real segment: two frames (pages 1 and 2, zeros) per transaction."""
    return encode_segment(
        PAGE_SIZE,
        first_txid,
        [
            SegmentTransaction(time_us, pages, [1, 2], bytes(2 * PAGE_SIZE))
            for time_us, pages in zip(times_us, db_pages, strict=True)
        ],
    )


def segment_entry(
    first_txid: int, times_us: list[int], db_pages: list[int], *, stored_bytes: int | None = None
) -> tuple[SegmentEntry, bytes]:
    """The index entry (with detail) of a real segment object, and that object's payload.
    *stored_bytes*: a fixed figure for pictures that must not depend on zstd (default:
    the real stored size)."""
    payload = segment_payload(first_txid, times_us, db_pages)
    stored = encode_object(ObjectKind.SEGMENT, payload)
    entry = SegmentEntry.create(
        digest=digest_hex(stored),
        first_txid=first_txid,
        stored_bytes=len(stored) if stored_bytes is None else stored_bytes,
        page_size=PAGE_SIZE,
        frames=2 * len(times_us),
        times_us=times_us,
        db_pages=db_pages,
    )
    return entry, payload


_FIXED_PAYLOADS: dict[str, bytes] = {}


def _segment(first_txid: int, times_us: list[int], db_pages: list[int]) -> SegmentEntry:
    entry, payload = segment_entry(
        first_txid, times_us, db_pages, stored_bytes=700 + 90 * len(times_us)
    )
    _FIXED_PAYLOADS[entry.digest] = payload
    return entry


def summaries_only(records: list[IndexRecord]) -> list[IndexRecord]:
    """*records* as a reader gets them back from a replica: segments without detail."""
    return [
        replace(record, segments=tuple(replace(s, detail=None) for s in record.segments))
        for record in records
    ]


def fixed_generations() -> list[tuple[str, list[IndexRecord]]]:
    """Two generations with fixed ids, times and sizes (records, segments with detail;
    the segments' stored sizes are fixed figures, not their objects' real sizes)."""
    old = new_generation_id(BASE_TIME_US // 1000 - 3_600_000, 0x1111)
    new = new_generation_id(BASE_TIME_US // 1000, 0x2222)
    old_records = [
        IndexRecord(
            old,
            0,
            BASE_TIME_US - 3_600_000_000,
            "fixture:1",
            snapshots=(
                SnapshotEntry(_digest("old-snap"), 1, BASE_TIME_US - 3_600_000_000, 4096, 2, 900),
            ),
            reason="first run",
        ),
        IndexRecord(
            old,
            1,
            BASE_TIME_US - 3_500_000_000,
            "fixture:1",
            segments=(
                _segment(
                    2,
                    [BASE_TIME_US - 3_590_000_000 + i * 10_000_000 for i in range(9)],
                    [2] * 9,
                ),
            ),
        ),
    ]
    # The new generation: a burst, a quiet minute, a longer burst.
    times = [BASE_TIME_US + i * 250_000 for i in range(12)]
    times += [BASE_TIME_US + 60_000_000 + i * 100_000 for i in range(20)]
    new_records = [
        IndexRecord(
            new,
            0,
            BASE_TIME_US,
            "fixture:1",
            snapshots=(SnapshotEntry(_digest("new-snap"), 40, BASE_TIME_US, 4096, 3, 1300),),
            reason="WAL overwritten by another process while litetool was stopped",
        ),
        IndexRecord(
            new,
            1,
            BASE_TIME_US + 4_000_000,
            "fixture:1",
            segments=(_segment(41, times[1:12], [3 + i // 4 for i in range(11)]),),
        ),
        IndexRecord(
            new,
            2,
            BASE_TIME_US + 62_000_000,
            "fixture:1",
            segments=(_segment(52, times[12:], [6 + i // 5 for i in range(20)]),),
        ),
    ]
    return [(old, old_records), (new, new_records)]


async def write_fixed_replica(url: str) -> None:
    replica = Replica.open(url)
    await replica.ensure_format(create=True)
    generations = fixed_generations()
    for payload in _FIXED_PAYLOADS.values():
        await replica.put_object(ObjectKind.SEGMENT, payload)
    for _generation, records in generations:
        for record in records:
            await replica.publish_record(record)


def long_generation_times(segments: int, per_segment: int) -> list[int]:
    """Commit times of txids 1.. of ``write_long_replica``: one a second, except that
    in every segment the clock goes back 1.5 s at its third transaction (as after an
    NTP step), so a running maximum and "the last commit at or before" differ."""
    times = []
    for number in range(segments):
        for i in range(per_segment):
            second = number * per_segment + i + 1
            times.append(BASE_TIME_US + second * 1_000_000 - (1_500_000 if i == 2 else 0))
    return times


def long_generation(
    segments: int = 40, per_segment: int = 10
) -> tuple[str, list[IndexRecord], list[bytes]]:
    """One generation: a snapshot at txid 0, then *segments* segments of *per_segment*
    transactions each, one index record per segment (entries with detail); times from
    :func:`long_generation_times`, db size = txid + 1 pages. Returns the generation id,
    the records and the segment payloads."""
    generation = new_generation_id(BASE_TIME_US // 1000, 0x3333)
    records = [
        IndexRecord(
            generation,
            0,
            BASE_TIME_US,
            "fixture:1",
            snapshots=(SnapshotEntry(_digest("long-snap"), 0, BASE_TIME_US, PAGE_SIZE, 1, 900),),
            reason="first run",
        )
    ]
    payloads = []
    times = long_generation_times(segments, per_segment)
    for number in range(segments):
        first = number * per_segment + 1
        entry, payload = segment_entry(
            first,
            times[first - 1 : first - 1 + per_segment],
            [txid + 1 for txid in range(first, first + per_segment)],
        )
        payloads.append(payload)
        records.append(
            IndexRecord(generation, number + 1, times[first - 1], "fixture:1", segments=(entry,))
        )
    return generation, records, payloads


async def write_long_replica(url: str, *, segments: int = 40, per_segment: int = 10) -> str:
    """Publish :func:`long_generation` (segment objects, no snapshot object) to a new
    replica at *url*; returns the generation id."""
    generation, records, payloads = long_generation(segments, per_segment)
    replica = Replica.open(url)
    await replica.ensure_format(create=True)
    for payload in payloads:
        await replica.put_object(ObjectKind.SEGMENT, payload)
    for record in records:
        await replica.publish_record(record)
    return generation


SPREAD_STEP_US = 8 * 3_600_000_000  # one commit every 8 hours


def spread_generation(
    days: int = 120, per_segment: int = 30
) -> tuple[str, list[IndexRecord], list[bytes]]:
    """One generation of commits every 8 hours for *days* days (txids 1..; a snapshot
    at txid 0), *per_segment* transactions per segment, one index record each: long
    enough for every zoom level of an 80-column histogram. Returns the generation id,
    the records (entries with detail) and the segment payloads."""
    generation = new_generation_id(BASE_TIME_US // 1000, 0x4444)
    records = [
        IndexRecord(
            generation,
            0,
            BASE_TIME_US,
            "fixture:1",
            snapshots=(SnapshotEntry(_digest("spread-snap"), 0, BASE_TIME_US, PAGE_SIZE, 1, 900),),
            reason="first run",
        )
    ]
    count = days * 86_400_000_000 // SPREAD_STEP_US
    times = [BASE_TIME_US + txid * SPREAD_STEP_US for txid in range(1, count + 1)]
    payloads = []
    for first in range(1, count + 1, per_segment):
        chunk = times[first - 1 : first - 1 + per_segment]
        entry, payload = segment_entry(first, chunk, [2] * len(chunk), stored_bytes=800)
        payloads.append(payload)
        records.append(
            IndexRecord(generation, len(records), chunk[-1], "fixture:1", segments=(entry,))
        )
    return generation, records, payloads


async def write_records(url: str, records: list[IndexRecord], payloads: list[bytes]) -> None:
    """Publish *records* (and their segment objects) to the replica at *url*, creating
    it if needed."""
    replica = Replica.open(url)
    await replica.ensure_format(create=True)
    for payload in payloads:
        await replica.put_object(ObjectKind.SEGMENT, payload)
    for record in records:
        await replica.publish_record(record)
