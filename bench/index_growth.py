"""Benchmark: how index records grow with a busy generation, format 1 against format 2.

A generation that a busy database writes for hours: one sync per second, each
one segment of ``--tx-per-sync`` transactions (200 by default: 200 tx/s at the
default 1 s sync interval), a snapshot every ``--snapshot-hours``. For each
record format this measures what the daemon and every reader pay:

- the compacted record(s) a reader loads for the whole generation: JSON bytes,
  stored bytes (envelope + zstd, what a restore downloads), decode time and the
  memory the decoded records hold (tracemalloc peak);
- one compaction by the daemon at the end of the run: what it reads and writes.
  Format 1 rewrites one record covering everything since record 0 every 256
  syncs; format 2 rewrites at most one compacted record of 8192 entries
  (docs/FORMAT.md section 5).

The floor is the information a reader cannot do without: one 32-byte digest
per segment, zstd-compressed (digests do not compress), measured in the same
run. Format 1 is built here from its documented schema (litetool only reads
it now) and decoded with litetool's own reader; format 2 is litetool's own
encoder and ``plan_compaction``.

    .venv/bin/python bench/index_growth.py [--hours 1] [--format1-hours 1]

Format 1 of a long run needs gigabytes of memory to decode, so it is measured
for ``--format1-hours`` and scaled linearly to ``--hours`` (its size is linear
in the transaction count; the table says which figures are scaled).
The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit_json, machine, table

from litetool.storage import (
    IndexRecord,
    ObjectKind,
    SegmentEntry,
    SnapshotEntry,
    decode_record,
    encode_object,
    encode_record,
)
from litetool.storage.format.generation import MAX_COMPACTED_ENTRIES, plan_compaction

GENERATION = "019ab3c2d4e5f6a7"
START_US = 1_764_040_000_000_000
PAGE_SIZE = 4096
COMPACT_EVERY_RECORDS = 256


def _digest(n: int) -> str:
    return os.urandom(32).hex() if n < 0 else (n.to_bytes(8, "big") + os.urandom(24)).hex()


def make_history(syncs: int, tx_per_sync: int, snapshot_every: int) -> list[IndexRecord]:
    """The index records of a busy generation (format 2 entries with detail kept)."""
    records = [
        IndexRecord(
            GENERATION,
            0,
            START_US,
            "bench",
            (SnapshotEntry(_digest(0), 0, START_US, PAGE_SIZE, 10_000, 40 << 20),),
            reason="first run",
        )
    ]
    txid = 1
    for sync in range(1, syncs + 1):
        base = START_US + sync * 1_000_000
        times = [base + i * (1_000_000 // tx_per_sync) for i in range(tx_per_sync)]
        pages = [10_000 + (txid + i) // 50 for i in range(tx_per_sync)]
        entry = SegmentEntry.create(
            _digest(sync), txid, 300_000, PAGE_SIZE, tx_per_sync * 2, times, pages
        )
        records.append(IndexRecord(GENERATION, len(records), base, "bench", (), (entry,)))
        txid += tx_per_sync
        if sync % snapshot_every == 0:
            snapshot = SnapshotEntry(_digest(-1), txid - 1, base, PAGE_SIZE, 10_000, 4 << 20)
            records.append(IndexRecord(GENERATION, len(records), base, "bench", (snapshot,)))
    return records


def _format1_payload(record: IndexRecord) -> bytes:
    """*record* in index record format 1 (docs/FORMAT.md section 5, 'Format 1')."""
    document = {
        "format": 1,
        "generation": record.generation,
        "seq": record.seq,
        "created_us": record.created_us,
        "writer": record.writer,
        "reason": record.reason,
        "snapshots": [
            {
                "manifest": s.manifest_digest,
                "txid": s.txid,
                "time_us": s.time_us,
                "page_size": s.page_size,
                "page_count": s.page_count,
                "bytes": s.stored_bytes,
            }
            for s in record.snapshots
        ],
        "segments": [
            {
                "object": e.digest,
                "first_txid": e.first_txid,
                "last_txid": e.last_txid,
                "bytes": e.stored_bytes,
                "page_size": e.page_size,
                "frames": e.frames,
                "times_us": e.detail.times_us.tolist(),
                "db_pages": e.detail.db_pages.tolist(),
            }
            for e in record.segments
        ],
        "covers": [0, record.seq],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _measure_read(payloads: list[bytes]) -> dict:
    """Stored bytes, decode seconds and decoded memory of the records a reader loads."""
    stored = [encode_object(ObjectKind.INDEX_RECORD, p) for p in payloads]
    started = time.perf_counter()
    decoded = [decode_record(p) for p in payloads]
    seconds = time.perf_counter() - started
    del decoded
    tracemalloc.start()  # a second pass: tracing slows decoding down several times
    decoded = [decode_record(p) for p in payloads]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del decoded
    return {
        "records": len(payloads),
        "json_bytes": sum(len(p) for p in payloads),
        "stored_bytes": sum(len(s) for s in stored),
        "decode_seconds": seconds,
        "decode_peak_bytes": peak,
    }


def format1(records: list[IndexRecord]) -> dict:
    """One compacted record of everything (format 1), and the daemon's last rewrite of it."""
    whole = IndexRecord(
        GENERATION,
        records[-1].seq,
        START_US,
        "bench",
        tuple(s for r in records for s in r.snapshots),
        tuple(e for r in records for e in r.segments),
        reason="first run",
        covers=(0, records[-1].seq),
    )
    started = time.perf_counter()
    payload = _format1_payload(whole)
    encode_seconds = time.perf_counter() - started
    read = _measure_read([payload])
    # Every 256 syncs the daemon read the whole view and wrote it again.
    return dict(
        read,
        compaction_read_bytes=read["json_bytes"],
        compaction_write_bytes=len(payload),
        compaction_encode_seconds=encode_seconds,
    )


def format2(records: list[IndexRecord]) -> dict:
    """The compacted records litetool's policy leaves, and the cost of its last compaction."""
    stored: list[IndexRecord] = []
    view: list[IndexRecord] = []
    last = {}
    for start in range(0, len(records), COMPACT_EVERY_RECORDS):
        tail = records[start : start + COMPACT_EVERY_RECORDS]
        head = [view[-1]] if view and view[-1].compacted else []
        started = time.perf_counter()
        planned = plan_compaction(head + tail, writer="bench", created_us=START_US)
        payloads = [encode_record(r) for r in planned]
        seconds = time.perf_counter() - started
        last = {
            "compaction_read_bytes": sum(len(encode_record(r)) for r in head + tail),
            "compaction_write_bytes": sum(len(p) for p in payloads),
            "compaction_encode_seconds": seconds,
        }
        # the view: the head goes when the first planned record absorbed it
        if head and planned and planned[0].first_seq == head[0].first_seq:
            view.pop()
        view += planned
        stored += planned
    read = _measure_read([encode_record(r) for r in view])
    return dict(read, **last)


def digest_floor(segments: int) -> dict:
    digests = os.urandom(32 * segments)
    return {"stored_bytes": len(zstandard.compress(digests, -1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--format1-hours", type=float, default=1.0)
    parser.add_argument("--tx-per-sync", type=int, default=200)
    parser.add_argument("--snapshot-hours", type=float, default=24.0)
    args = parser.parse_args()
    syncs = int(args.hours * 3600)
    syncs1 = int(args.format1_hours * 3600)
    snapshot_every = max(1, int(args.snapshot_hours * 3600))
    scale = syncs / syncs1

    history = make_history(syncs, args.tx_per_sync, snapshot_every)
    two = format2(history)
    one = format1(history[: syncs1 + 1 + syncs1 // snapshot_every])
    one_scaled = {k: (v * scale if k != "records" else v) for k, v in one.items()}
    floor = digest_floor(syncs)

    rows = []
    for name in (
        "json_bytes",
        "stored_bytes",
        "decode_seconds",
        "decode_peak_bytes",
        "compaction_read_bytes",
        "compaction_write_bytes",
        "compaction_encode_seconds",
    ):
        ratio = one_scaled[name] / two[name] if two[name] else float("inf")
        rows.append((name, f"{one_scaled[name]:,.3g}", f"{two[name]:,.3g}", f"{ratio:,.1f}x"))
    rows.append(("records a reader loads", one["records"], two["records"], ""))
    print(
        f"{args.hours:g} h of a busy generation: {syncs:,} syncs of {args.tx_per_sync} "
        f"transactions ({syncs * args.tx_per_sync:,} in all), a snapshot every "
        f"{args.snapshot_hours:g} h; format 1 measured over {args.format1_hours:g} h and "
        f"scaled x{scale:g}"
    )
    print(table(("figure", "format 1", "format 2", "1 / 2"), rows))
    print(
        f"floor: {syncs:,} segment digests, zstd: {floor['stored_bytes']:,} bytes; "
        f"format 2 stores {two['stored_bytes'] / floor['stored_bytes']:.2f}x that"
    )
    emit_json(
        {
            "machine": machine(),
            "hours": args.hours,
            "tx_per_sync": args.tx_per_sync,
            "max_compacted_entries": MAX_COMPACTED_ENTRIES,
            "format1_scaled": one_scaled,
            "format1_measured_hours": args.format1_hours,
            "format2": two,
            "floor": floor,
        }
    )


if __name__ == "__main__":
    main()
