"""Index records (object kind 4; docs/FORMAT.md section 5).

An index record's payload is a UTF-8 JSON object::

    {"format": 1, "generation": "<16 hex>", "seq": 0, "created_us": ...,
     "writer": "host:pid:8 hex", "reason": "first run",          # reason: record 0 only
     "snapshots": [{"manifest": "<64 hex>", "txid": 0, "time_us": ..., "page_size": 4096,
                    "page_count": 12, "bytes": 5120}],
     "segments": [{"object": "<64 hex>", "first_txid": 1, "last_txid": 3, "bytes": 4200,
                   "page_size": 4096, "frames": 5, "times_us": [...], "db_pages": [...]}],
     "covers": [0, seq]}                                          # compacted records only

Field by field: ``bytes`` is a stored size (what a restore downloads);
``times_us[i]`` and ``db_pages[i]`` belong to txid ``first_txid + i``;
``frames`` is the segment's frame count (at least one per transaction).
Unknown fields are ignored; missing or mistyped fields are
``ReplicaFormatError``; ``format`` other than 1 is refused.

A compacted record keeps the ``reason`` of the record 0 it covers (it is
the record that opens the generation from then on). Pure: bytes in, values out.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from litetool.errors import ReplicaFormatError
from litetool.storage.json_fields import MAX_I64, MIN_I64, Fields, dump_json, parse_json_object
from litetool.storage.keys import MAX_SEQ, validate_digest, validate_generation
from litetool.storage.segment import MAX_U32, is_valid_page_size

RECORD_FORMAT = 1
MAX_WRITER_LENGTH = 256
MAX_REASON_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """A snapshot named by a record: its manifest and the txid it captures."""

    manifest_digest: str
    txid: int
    time_us: int
    page_size: int
    page_count: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """A segment named by a record. ``times_us``/``db_pages`` are indexed by
    ``txid - first_txid`` (arrays of i64 / u32; treat them as read-only)."""

    digest: str
    first_txid: int
    last_txid: int
    stored_bytes: int
    page_size: int
    frames: int
    times_us: array = field(repr=False)
    db_pages: array = field(repr=False)

    @classmethod
    def create(
        cls,
        digest: str,
        first_txid: int,
        stored_bytes: int,
        page_size: int,
        frames: int,
        times_us: Sequence[int],
        db_pages: Sequence[int],
    ) -> SegmentEntry:
        """Build an entry from plain sequences (``last_txid`` follows from the times)."""
        return cls(
            digest=digest,
            first_txid=first_txid,
            last_txid=first_txid + len(times_us) - 1,
            stored_bytes=stored_bytes,
            page_size=page_size,
            frames=frames,
            times_us=array("q", times_us),
            db_pages=array("I", db_pages),
        )

    @property
    def transaction_count(self) -> int:
        return self.last_txid - self.first_txid + 1


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One index record. ``covers`` is ``(0, seq)`` for a compacted record."""

    generation: str
    seq: int
    created_us: int
    writer: str
    snapshots: tuple[SnapshotEntry, ...] = ()
    segments: tuple[SegmentEntry, ...] = ()
    reason: str | None = None
    covers: tuple[int, int] | None = None

    @property
    def compacted(self) -> bool:
        return self.covers is not None


def _snapshot_to_json(entry: SnapshotEntry) -> dict:
    return {
        "manifest": entry.manifest_digest,
        "txid": entry.txid,
        "time_us": entry.time_us,
        "page_size": entry.page_size,
        "page_count": entry.page_count,
        "bytes": entry.stored_bytes,
    }


def _segment_to_json(entry: SegmentEntry) -> dict:
    return {
        "object": entry.digest,
        "first_txid": entry.first_txid,
        "last_txid": entry.last_txid,
        "bytes": entry.stored_bytes,
        "page_size": entry.page_size,
        "frames": entry.frames,
        "times_us": entry.times_us.tolist(),
        "db_pages": entry.db_pages.tolist(),
    }


def encode_record(record: IndexRecord) -> bytes:
    """The JSON payload of *record* (validated first: an invalid record is a bug)."""
    document: dict = {
        "format": RECORD_FORMAT,
        "generation": record.generation,
        "seq": record.seq,
        "created_us": record.created_us,
        "writer": record.writer,
    }
    if record.reason is not None:
        document["reason"] = record.reason
    document["snapshots"] = [_snapshot_to_json(entry) for entry in record.snapshots]
    document["segments"] = [_segment_to_json(entry) for entry in record.segments]
    if record.covers is not None:
        document["covers"] = list(record.covers)
    payload = dump_json(document)
    decode_record(payload)  # same rules for writing as for reading
    return payload


def _decode_snapshot(item: Fields) -> SnapshotEntry:
    return SnapshotEntry(
        manifest_digest=item.checked("manifest", validate_digest),
        txid=item.integer("txid"),
        time_us=item.integer("time_us", MIN_I64),
        page_size=item.checked("page_size", _page_size),
        page_count=item.integer("page_count", 1, MAX_U32),
        stored_bytes=item.integer("bytes"),
    )


def _decode_segment_entry(item: Fields) -> SegmentEntry:
    first_txid = item.integer("first_txid")
    last_txid = item.integer("last_txid", first_txid)
    count = last_txid - first_txid + 1
    times_us = item.integers("times_us", MIN_I64, MAX_I64)
    db_pages = item.integers("db_pages", 1, MAX_U32)
    for name, values in (("times_us", times_us), ("db_pages", db_pages)):
        if len(values) != count:
            raise item.error(name, f"has {len(values)} entries for {count} transactions")
    frames = item.integer("frames", count, MAX_U32)
    return SegmentEntry(
        digest=item.checked("object", validate_digest),
        first_txid=first_txid,
        last_txid=last_txid,
        stored_bytes=item.integer("bytes"),
        page_size=item.checked("page_size", _page_size),
        frames=frames,
        times_us=array("q", times_us),
        db_pages=array("I", db_pages),
    )


def _page_size(value: object) -> int:
    if not is_valid_page_size(value):
        raise ReplicaFormatError(f"not a page size: {value!r}")
    return value  # type: ignore[return-value]


def decode_record(payload: bytes | bytearray | memoryview) -> IndexRecord:
    """Parse and validate an index record payload (ReplicaFormatError otherwise)."""
    fields = Fields("index record", parse_json_object("index record", payload))
    record_format = fields.integer("format", 0, MAX_I64)
    if record_format != RECORD_FORMAT:
        raise ReplicaFormatError(
            f"index record format {record_format} is not supported (this litetool reads "
            f"format {RECORD_FORMAT})",
            hint="upgrade litetool to read this replica",
        )
    seq = fields.integer("seq", 0, MAX_SEQ)
    covers = None
    if fields.has("covers"):
        bounds = fields.integers("covers", 0, MAX_SEQ)
        if bounds != [0, seq]:
            raise fields.error("covers", f"must be [0, {seq}], got {bounds}")
        covers = (0, seq)
    reason = fields.text("reason", MAX_REASON_LENGTH) if fields.has("reason") else None
    return IndexRecord(
        generation=fields.checked("generation", validate_generation),
        seq=seq,
        created_us=fields.integer("created_us", MIN_I64),
        writer=fields.text("writer", MAX_WRITER_LENGTH),
        reason=reason,
        snapshots=tuple(_decode_snapshot(item) for item in fields.objects("snapshots")),
        segments=tuple(_decode_segment_entry(item) for item in fields.objects("segments")),
        covers=covers,
    )
