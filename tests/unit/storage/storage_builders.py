"""Builders for storage unit tests: records and generations without any I/O.

Imported by the tests as ``storage_builders`` (their directory is on sys.path).
"""

from __future__ import annotations

from litetool.storage import IndexRecord, SegmentEntry, SnapshotEntry, new_generation_id

GENERATION = new_generation_id(1_764_040_000_000, 0xABCD)
PAGE_SIZE = 4096


def digest_for(label: str) -> str:
    """A valid, distinct, deterministic digest per label (not a real hash)."""
    return (label.encode().hex() + "0" * 64)[:64]


def snapshot(txid: int, time_us: int, label: str | None = None, page_count: int = 3):
    return SnapshotEntry(
        manifest_digest=digest_for(label or f"snap{txid}"),
        txid=txid,
        time_us=time_us,
        page_size=PAGE_SIZE,
        page_count=page_count,
        stored_bytes=100,
    )


def segment(first_txid: int, times_us: list[int], label: str | None = None) -> SegmentEntry:
    return SegmentEntry.create(
        digest=digest_for(label or f"seg{first_txid}"),
        first_txid=first_txid,
        stored_bytes=10 * len(times_us),
        page_size=PAGE_SIZE,
        frames=len(times_us),
        times_us=times_us,
        db_pages=[3] * len(times_us),
    )


def record(seq: int, snapshots=(), segments=(), *, generation: str = GENERATION, **kw):
    reason = kw.pop("reason", "first run" if seq == 0 else None)
    return IndexRecord(
        generation=generation,
        seq=seq,
        created_us=kw.pop("created_us", 1_000 + seq),
        writer=kw.pop("writer", "test:1:deadbeef"),
        snapshots=tuple(snapshots),
        segments=tuple(segments),
        reason=reason,
        **kw,
    )
