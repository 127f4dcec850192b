"""Index records (object kind 4; docs/FORMAT.md section 5).

An index record's payload is a UTF-8 JSON object. Format 2 (written)::

    {"format": 2, "generation": "<16 hex>", "seq": 0, "created_us": ...,
     "writer": "host:pid:8 hex", "reason": "first run",    # record 0 and compacted records
     "snapshots": [{"manifest": "<64 hex>", "txid": 0, "time_us": ..., "page_size": 4096,
                    "page_count": 12, "bytes": 5120}],
     "segments": [{"object": "<64 hex>", "first_txid": 1, "last_txid": 3, "bytes": 4200,
                   "page_size": 4096, "frames": 5, "first_time_us": ...,
                   "last_time_us": ..., "max_time_us": ..., "db_pages": 13}],
     "covers": [lo, seq]}                                     # compacted records only

A segment is summarised: the commit times of its first and last transaction,
the latest commit time of any of them, and the database size (pages) after
the last. Per-transaction times and sizes live in the segment object; a
reader that needs them attaches a :class:`SegmentDetail` to the entry.

Format 1 (read only) has ``"times_us": [...]`` and ``"db_pages": [...]``, one
entry per transaction, instead of the four summary fields; its compacted
records always cover ``[0, seq]``. Decoding one yields entries with their
summary derived and their detail attached.

``bytes`` is a stored size (what a restore downloads); ``frames`` is the
segment's frame count (at least one per transaction). Unknown fields are
ignored; missing or mistyped fields are ``ReplicaFormatError``; a ``format``
other than 1 or 2 is refused. Pure: bytes in, values out.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from litetool.errors import ReplicaFormatError
from litetool.storage.format.json_fields import (
    MAX_I64,
    MIN_I64,
    Fields,
    dump_json,
    parse_json_object,
)
from litetool.storage.format.keys import MAX_SEQ, validate_digest, validate_generation
from litetool.storage.format.segment import (
    MAX_PAGE_NUMBER,
    MAX_U32,
    Segment,
    is_valid_page_size,
    segment_payload_length,
)
from litetool.wording import plural

RECORD_FORMAT = 2
#: The record formats this release reads.
READABLE_FORMATS = (1, 2)
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
class SegmentDetail:
    """Per-transaction commit times (i64) and database sizes after each transaction
    (u32), indexed by ``txid - first_txid`` (treat the arrays as read-only)."""

    times_us: array
    db_pages: array

    @classmethod
    def create(cls, times_us: Sequence[int], db_pages: Sequence[int]) -> SegmentDetail:
        return cls(array("q", times_us), array("I", db_pages))

    @classmethod
    def of(cls, segment: Segment) -> SegmentDetail:
        """The detail a decoded segment object carries."""
        return cls(segment.commit_times_us, segment.db_sizes_pages)


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """A segment named by a record, with its summary (docs/FORMAT.md section 5).

    ``db_pages`` is the database size after ``last_txid``. ``detail`` is set
    when the per-transaction values are known (a format-1 record, a fetched
    segment, or the writer's own build); it is never encoded in format 2.
    """

    digest: str
    first_txid: int
    last_txid: int
    stored_bytes: int
    page_size: int
    frames: int
    first_time_us: int
    last_time_us: int
    max_time_us: int
    db_pages: int
    detail: SegmentDetail | None = field(default=None, repr=False, compare=False)

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
        *,
        keep_detail: bool = True,
    ) -> SegmentEntry:
        """Build an entry from per-transaction values (``last_txid`` follows from them)."""
        detail = SegmentDetail.create(times_us, db_pages)
        return cls.summarise(
            digest, first_txid, stored_bytes, page_size, frames, detail, keep_detail=keep_detail
        )

    @classmethod
    def summarise(
        cls,
        digest: str,
        first_txid: int,
        stored_bytes: int,
        page_size: int,
        frames: int,
        detail: SegmentDetail,
        *,
        keep_detail: bool = True,
    ) -> SegmentEntry:
        times = detail.times_us
        if not times or len(times) != len(detail.db_pages):
            raise ValueError("a segment entry needs one time and one size per transaction")
        return cls(
            digest=digest,
            first_txid=first_txid,
            last_txid=first_txid + len(times) - 1,
            stored_bytes=stored_bytes,
            page_size=page_size,
            frames=frames,
            first_time_us=times[0],
            last_time_us=times[-1],
            max_time_us=max(times),
            db_pages=detail.db_pages[-1],
            detail=detail if keep_detail else None,
        )

    @property
    def transaction_count(self) -> int:
        return self.last_txid - self.first_txid + 1

    @property
    def payload_length(self) -> int:
        """The exact payload length of the segment object this entry describes."""
        return segment_payload_length(self.transaction_count, self.frames, self.page_size)

    def matches(self, detail: SegmentDetail) -> bool:
        """Whether per-transaction *detail* (from the segment object) agrees with the summary."""
        times = detail.times_us
        return (
            len(times) == self.transaction_count
            and len(detail.db_pages) == self.transaction_count
            and times[0] == self.first_time_us
            and times[-1] == self.last_time_us
            and max(times) == self.max_time_us
            and detail.db_pages[-1] == self.db_pages
        )

    def mismatch(self, segment: Segment) -> str | None:
        """Why the decoded *segment* is not the one this entry describes (None if it is)."""
        if (segment.first_txid, segment.last_txid) != (self.first_txid, self.last_txid):
            return (
                f"holds txids {segment.first_txid}..{segment.last_txid}, "
                f"the index record says {self.first_txid}..{self.last_txid}"
            )
        if segment.page_size != self.page_size or segment.frame_count != self.frames:
            return (
                f"has {plural(segment.frame_count, 'frame')} of {segment.page_size} bytes, "
                f"the index record says {self.frames} of {self.page_size}"
            )
        detail = SegmentDetail.of(segment)
        known = self.detail
        if not self.matches(detail) or (
            known is not None
            and (known.times_us != detail.times_us or known.db_pages != detail.db_pages)
        ):
            return "commit times or db sizes differ from the index record"
        return None

    def with_detail(self, detail: SegmentDetail) -> SegmentEntry:
        """This entry with *detail* attached (ValueError if it disagrees with the summary)."""
        if not self.matches(detail):
            raise ValueError(f"segment {self.digest[:12]} disagrees with its index entry")
        return replace(self, detail=detail)


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One index record. ``covers`` is ``(lo, seq)`` for a compacted record;
    ``record_format`` is the format it was decoded from (2 for new records)."""

    generation: str
    seq: int
    created_us: int
    writer: str
    snapshots: tuple[SnapshotEntry, ...] = ()
    segments: tuple[SegmentEntry, ...] = ()
    reason: str | None = None
    covers: tuple[int, int] | None = None
    record_format: int = RECORD_FORMAT

    @property
    def compacted(self) -> bool:
        return self.covers is not None

    @property
    def first_seq(self) -> int:
        """The first record this one stands for (its own seq unless compacted)."""
        return self.covers[0] if self.covers is not None else self.seq

    @property
    def entry_count(self) -> int:
        return len(self.snapshots) + len(self.segments)


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
        "first_time_us": entry.first_time_us,
        "last_time_us": entry.last_time_us,
        "max_time_us": entry.max_time_us,
        "db_pages": entry.db_pages,
    }


def encode_record(record: IndexRecord) -> bytes:
    """The format-2 JSON payload of *record* (validated first: an invalid record is a bug)."""
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
        page_count=item.integer("page_count", 1, MAX_PAGE_NUMBER),
        stored_bytes=item.integer("bytes"),
    )


def _decode_segment_entry(item: Fields, record_format: int) -> SegmentEntry:
    first_txid = item.integer("first_txid")
    last_txid = item.integer("last_txid", first_txid)
    count = last_txid - first_txid + 1
    if count > MAX_U32:  # every transaction has a frame, and a segment at most MAX_U32 frames
        raise item.error(
            "last_txid",
            f"is {plural(count, 'transaction')} after first_txid {first_txid}: a segment holds at "
            f"most {MAX_U32} (one frame each at least)",
        )
    frames = item.integer("frames", count, MAX_U32)
    digest = item.checked("object", validate_digest)
    stored_bytes = item.integer("bytes")
    page_size = item.checked("page_size", _page_size)
    if record_format == 1:
        times_us = item.integers("times_us", MIN_I64, MAX_I64)
        db_pages = item.integers("db_pages", 1, MAX_PAGE_NUMBER)
        for name, values in (("times_us", times_us), ("db_pages", db_pages)):
            if len(values) != count:
                raise item.error(
                    name,
                    f"has {plural(len(values), 'entry', 'entries')} "
                    f"for {plural(count, 'transaction')}",
                )
        return SegmentEntry.create(
            digest, first_txid, stored_bytes, page_size, frames, times_us, db_pages
        )
    first_time_us = item.integer("first_time_us", MIN_I64)
    last_time_us = item.integer("last_time_us", MIN_I64)
    max_time_us = item.integer("max_time_us", max(first_time_us, last_time_us))
    if count == 1 and not first_time_us == last_time_us == max_time_us:
        raise item.error("max_time_us", "differs from the only transaction's time")
    return SegmentEntry(
        digest=digest,
        first_txid=first_txid,
        last_txid=last_txid,
        stored_bytes=stored_bytes,
        page_size=page_size,
        frames=frames,
        first_time_us=first_time_us,
        last_time_us=last_time_us,
        max_time_us=max_time_us,
        db_pages=item.integer("db_pages", 1, MAX_PAGE_NUMBER),
    )


def _page_size(value: object) -> int:
    if not is_valid_page_size(value):
        raise ReplicaFormatError(f"not a page size: {value!r}")
    return value  # type: ignore[return-value]


def decode_record(payload: bytes | bytearray | memoryview) -> IndexRecord:
    """Parse and validate an index record payload of format 1 or 2
    (ReplicaFormatError otherwise)."""
    fields = Fields("index record", parse_json_object("index record", payload))
    record_format = fields.integer("format", 0, MAX_I64)
    if record_format not in READABLE_FORMATS:
        raise ReplicaFormatError(
            f"index record format {record_format} is not supported (this litetool reads "
            f"formats {', '.join(map(str, READABLE_FORMATS))})",
            hint="upgrade litetool to read this replica",
        )
    seq = fields.integer("seq", 0, MAX_SEQ)
    covers = None
    if fields.has("covers"):
        bounds = fields.integers("covers", 0, MAX_SEQ)
        if len(bounds) != 2 or bounds[1] != seq or bounds[0] > seq:
            raise fields.error("covers", f"must be [lo, {seq}] with lo <= {seq}, got {bounds}")
        if record_format == 1 and bounds[0] != 0:
            raise fields.error("covers", f"must be [0, {seq}] in format 1, got {bounds}")
        covers = (bounds[0], seq)
    reason = fields.text("reason", MAX_REASON_LENGTH) if fields.has("reason") else None
    return IndexRecord(
        generation=fields.checked("generation", validate_generation),
        seq=seq,
        created_us=fields.integer("created_us", MIN_I64),
        writer=fields.text("writer", MAX_WRITER_LENGTH),
        reason=reason,
        snapshots=tuple(_decode_snapshot(item) for item in fields.objects("snapshots")),
        segments=tuple(
            _decode_segment_entry(item, record_format) for item in fields.objects("segments")
        ),
        covers=covers,
        record_format=record_format,
    )
