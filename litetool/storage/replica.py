"""The replica API used by the engine and by restore (async).

A :class:`Replica` is one replica root (docs/FORMAT.md). Writers put objects
first (:meth:`Replica.put_object`, :meth:`Replica.put_snapshot`), then publish
the index record that names them (:meth:`Replica.publish_record`, the commit
point). Readers list and load records first, through the replica's index
reader (``replica.index``: ``index.py``), then fetch and verify the objects
they name.

Contracts:

- ``put_object`` is idempotent: an existing object with the same digest is
  the same bytes, so "already exists" means done.
- ``fetch_object`` returns a payload only after every envelope check passed
  (``CorruptObject`` otherwise); objects larger than ``max_object_bytes``, or
  than what they may legitimately hold (a segment what its index entry says,
  a chunk what its manifest says, a record or manifest a JSON document's
  bound), are refused from their metadata before the body is read, and from
  their header before anything is decompressed.
- ``publish_record`` creates the record or raises ``ReplicaConflict``, except
  that re-publishing an identical record (a retry after a lost response) is
  success, and a record of the same writer with other contents (an earlier
  attempt that was stored although its answer was lost, then rebuilt with
  more transactions) is ``OwnRecordExists``: the writer reloads its tip.
- Compression and hashing of large payloads run in worker threads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from litetool.crashpoints import crash_point
from litetool.errors import (
    CorruptObject,
    ObjectNotFound,
    OwnRecordExists,
    ReplicaConflict,
    ReplicaFormatError,
    StorageError,
    StorageUnavailable,
)
from litetool.storage import lease as lease_io
from litetool.storage.concurrency import DEFAULT_CONCURRENCY, gather_limited, in_thread_if_large
from litetool.storage.counting_store import CountingStore
from litetool.storage.format.envelope import (
    HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    ObjectKind,
    decode_object,
    digest_hex,
    encode_object,
    max_manifest_bytes,
    max_stored_bytes,
)
from litetool.storage.format.generation import GenerationIndex, plan_compaction
from litetool.storage.format.json_fields import Fields, dump_json, parse_json_object
from litetool.storage.format.keys import MARKER_KEY, object_key
from litetool.storage.format.manifest import (
    DEFAULT_CHUNK_SIZE,
    SnapshotManifest,
    decode_manifest,
)
from litetool.storage.format.records import (
    IndexRecord,
    SegmentDetail,
    SegmentEntry,
    SnapshotEntry,
    encode_record,
)
from litetool.storage.format.segment import Segment, decode_segment
from litetool.storage.gc import GcReport, collect_garbage
from litetool.storage.index import GenerationTip, IndexReader, record_ref
from litetool.storage.location import Location, parse_location
from litetool.storage.obstore_store import open_store
from litetool.storage.snapshot_upload import upload_snapshot
from litetool.storage.stats import RequestStats
from litetool.storage.store import ALREADY_EXISTS

REPLICA_FORMAT = "litetool-replica"
REPLICA_VERSION = 1
MAX_MARKER_BYTES = 64 << 10
#: The largest stored object ever read: the envelope bound plus zstd's worst case.
DEFAULT_MAX_OBJECT_BYTES = HEADER_SIZE + MAX_PAYLOAD_BYTES + (MAX_PAYLOAD_BYTES >> 7) + (1 << 20)
#: Snapshot chunks in flight at once: each holds about 8-12 MiB (the 4 MiB chunk,
#: compressed, enveloped), and compressing is CPU-bound on a small machine.
SNAPSHOT_CONCURRENCY = 4

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A stored content-addressed object. ``uploaded`` is False when it already existed."""

    digest: str
    stored_bytes: int
    uploaded: bool = True


def _now_us() -> int:
    return time.time_ns() // 1000


class Replica:
    """One replica root: objects, index records, the lease, GC."""

    def __init__(
        self,
        location: Location,
        name: str | None = None,
        *,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.location = location
        self.name = name or location.display_url
        self.stats = RequestStats()
        self.store = CountingStore(open_store(location), self.stats)
        self.max_object_bytes = max_object_bytes
        self.concurrency = concurrency
        self.index = IndexReader(
            self.store, max_object_bytes=max_object_bytes, concurrency=concurrency
        )

    @classmethod
    def open(
        cls, url: str, options: Mapping[str, Any] | None = None, name: str | None = None
    ) -> Replica:
        """Parse *url* (ConfigError if invalid); no request is made yet."""
        return cls(parse_location(url, options), name)

    @property
    def display_url(self) -> str:
        return self.location.display_url

    def configure(self) -> None:
        """Build the store client now, without a request: a configuration that cannot
        work (an S3 replica without any credentials, a bad AWS_ENDPOINT_URL) is a
        ConfigError here rather than at the first request. A local directory is
        left to :meth:`ensure_format`, which may create it."""
        if self.location.scheme != "file":
            self.store.open()

    @property
    def facts(self) -> dict[str, str]:
        """How the store is configured, for the log (S3: endpoint, region and where
        the credentials come from); never a secret. Empty before ``configure``."""
        return dict(self.store.facts)

    def __repr__(self) -> str:
        return f"Replica({self.name!r}, {self.display_url!r})"

    # -- format marker ---------------------------------------------------------------------

    async def ensure_format(self, create: bool) -> int:
        """Create (``create=True``, if absent) or verify the format marker; returns its version.

        ObjectNotFound when there is no replica and ``create`` is False;
        ReplicaFormatError for a marker of another format or an unknown version.
        """
        if create:
            self.store.open(create=True)
            marker = dump_json({"format": REPLICA_FORMAT, "version": REPLICA_VERSION})
            try:
                await self.store.put(MARKER_KEY, marker, mode="create", expected=(ALREADY_EXISTS,))
                return REPLICA_VERSION
            except ALREADY_EXISTS:
                pass
        try:
            data, _ = await self.store.get(MARKER_KEY, max_bytes=MAX_MARKER_BYTES)
        except ObjectNotFound as exc:
            raise ObjectNotFound(
                MARKER_KEY, hint=f"there is no litetool replica at {self.display_url}"
            ) from exc
        fields = Fields("format marker", parse_json_object("format marker", data))
        if fields.raw("format") != REPLICA_FORMAT:
            raise ReplicaFormatError(f"{self.display_url} is not a litetool replica")
        version = fields.integer("version")
        if version != REPLICA_VERSION:
            raise ReplicaFormatError(
                f"replica format version {version} is not supported (this litetool reads "
                f"version {REPLICA_VERSION})",
                hint="upgrade litetool" if version > REPLICA_VERSION else None,
            )
        return version

    async def probe(self) -> bool:
        """Whether the store answers at all: one HEAD of the format marker (and the
        store client's own retries). Any answer counts, even "not found" or "denied":
        for a writer waiting out an outage, the next attempt says what it is."""
        try:
            await self.store.head(MARKER_KEY)
        except StorageUnavailable:
            return False
        except StorageError:
            return True
        return True

    # -- content-addressed objects ---------------------------------------------------------

    async def put_object(self, kind: ObjectKind, payload: Buffer) -> ObjectRef:
        """Envelope, hash and upload *payload* (idempotent)."""

        def encode() -> tuple[bytes, str]:
            stored = encode_object(kind, payload)
            return stored, digest_hex(stored)

        stored, digest = await in_thread_if_large(len(payload), encode)
        try:
            await self.store.put(
                object_key(digest), stored, mode="create", expected=(ALREADY_EXISTS,)
            )
        except ALREADY_EXISTS:
            return ObjectRef(digest, len(stored), uploaded=False)
        return ObjectRef(digest, len(stored))

    async def fetch_object(
        self,
        digest: str,
        kind: ObjectKind,
        *,
        expected_length: int | None = None,
        max_length: int | None = None,
    ) -> Buffer:
        """Download, verify and decompress the object named *digest*; its payload must be
        *expected_length* bytes when given, at most *max_length* otherwise (see
        ``decode_object``)."""
        key = object_key(digest)
        bound = expected_length if expected_length is not None else max_length
        max_bytes = self.max_object_bytes
        if bound is not None:
            max_bytes = min(max_bytes, max_stored_bytes(bound))
        data, _ = await self.store.get(key, max_bytes=max_bytes)

        def decode() -> Buffer:
            return decode_object(
                key, data, kind, digest, expected_length=expected_length, max_length=max_length
            )

        return await in_thread_if_large(len(data), decode)

    async def fetch_segment(self, digest: str, *, expected_length: int | None = None) -> Segment:
        """The segment named *digest*; *expected_length* is its payload length when an
        index entry names it (``SegmentEntry.payload_length``)."""
        payload = await self.fetch_object(
            digest, ObjectKind.SEGMENT, expected_length=expected_length
        )
        try:
            return await in_thread_if_large(len(payload), decode_segment, payload)
        except ReplicaFormatError as exc:
            raise CorruptObject(object_key(digest), exc.message) from exc

    async def fetch_detail(self, entry: SegmentEntry) -> SegmentDetail:
        """The per-transaction detail of the segment *entry* names, from the segment
        object; CorruptObject when the segment disagrees with *entry*."""
        segment = await self.fetch_segment(entry.digest, expected_length=entry.payload_length)
        problem = entry.mismatch(segment)
        if problem is not None:
            raise CorruptObject(object_key(entry.digest), problem)
        return SegmentDetail.of(segment)

    async def fetch_details(
        self, index: GenerationIndex, segments: Iterable[SegmentEntry] | None = None
    ) -> GenerationIndex:
        """*index* with the detail of *segments* (default: every segment without one)
        attached, fetched in parallel (see :meth:`fetch_detail`)."""
        wanted = [s for s in (index.segments if segments is None else segments) if not s.detail]
        details = await gather_limited(
            ((lambda entry=entry: self.fetch_detail(entry)) for entry in wanted), self.concurrency
        )
        for entry, detail in zip(wanted, details, strict=True):
            index = index.with_detail(entry, detail)
        return index

    async def fetch_manifest(
        self, digest: str, *, snapshot: SnapshotEntry | None = None
    ) -> SnapshotManifest:
        """The manifest named *digest*; bounded by the size of *snapshot* (the index
        entry naming it) when given."""
        bound = (
            max_manifest_bytes(snapshot.page_count, snapshot.page_size)
            if snapshot is not None
            else None
        )
        payload = await self.fetch_object(digest, ObjectKind.SNAPSHOT_MANIFEST, max_length=bound)
        try:
            return decode_manifest(payload)
        except ReplicaFormatError as exc:
            raise CorruptObject(object_key(digest), exc.message) from exc

    async def put_snapshot(
        self,
        chunks: Iterable[Buffer] | AsyncIterable[Buffer],
        *,
        txid: int,
        time_us: int,
        page_size: int,
        page_count: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> SnapshotEntry:
        """Upload a database image given as consecutive chunks of *chunk_size* bytes (the
        last may be shorter), then its manifest. At most ``SNAPSHOT_CONCURRENCY`` chunks
        are held."""
        return await upload_snapshot(
            self.put_object,
            chunks,
            txid=txid,
            time_us=time_us,
            page_size=page_size,
            page_count=page_count,
            chunk_size=chunk_size,
            concurrency=min(self.concurrency, SNAPSHOT_CONCURRENCY),
        )

    # -- index records ---------------------------------------------------------------------

    async def publish_record(self, record: IndexRecord) -> None:
        """Create *record* (the commit point of a sync). ReplicaConflict if another
        record with its key exists; OwnRecordExists if that record is this writer's
        own (an earlier attempt whose answer was lost)."""
        payload = encode_record(record)
        stored = await in_thread_if_large(
            len(payload), encode_object, ObjectKind.INDEX_RECORD, payload
        )
        ref = record_ref(record)
        try:
            await self.store.put(ref.key, stored, mode="create", expected=(ALREADY_EXISTS,))
            return
        except ALREADY_EXISTS:
            pass
        existing = await self.index.fetch_record(record.generation, ref)
        if encode_record(existing) == payload:
            return  # our own earlier attempt succeeded; its response was lost
        what = "compacted record" if record.compacted else "index record"
        if existing.writer == record.writer:
            # Writer ids are unique per process: an earlier attempt of ours at this
            # record (other segments, another time) was stored although its answer
            # was lost (a timeout, an error after the write).
            raise OwnRecordExists(
                f"{what} {record.seq} of generation {record.generation} was already "
                "stored by an earlier attempt of this writer whose answer was lost",
                seq=record.seq,
                hint="the writer continues from what the replica holds",
            )
        raise ReplicaConflict(
            f"{what} {record.seq} of generation {record.generation} already exists "
            f"(written by {existing.writer})",
            hint="another litetool is replicating into this replica",
        )

    async def load_tip(self, generation: str) -> GenerationTip:
        """Where *generation* ends, for this writer to resume it (see
        :meth:`IndexReader.load_tip`)."""
        return await self.index.load_tip(generation)

    async def compact(
        self,
        generation: str,
        *,
        min_records: int = 1,
        writer: str = "litetool-compact",
        now_us: int | None = None,
    ) -> list[int]:
        """Compact the index records after the view's last compacted record
        (docs/FORMAT.md section 5): reads only those and that compacted record,
        so the cost is bounded whatever the generation's length.

        Returns the seqs of the compacted records written; none when fewer than
        *min_records* index records follow the last compacted record.
        """
        keys = (await self.index.list_record_keys(generation)).get(generation)
        if keys is None:
            return []
        view = keys.view()
        start = max((i for i, ref in enumerate(view) if ref.compacted), default=0)
        tail = len(view) - start - (1 if view and view[start].compacted else 0)
        if tail < max(1, min_records):
            return []
        records = await self.index.fetch_records(generation, view[start:])
        planned = plan_compaction(
            records, writer=writer, created_us=_now_us() if now_us is None else now_us
        )
        for record in planned:
            try:
                await self.publish_record(record)
            except ReplicaConflict:
                pass  # another compactor covered the same records first: same effect
            crash_point("compaction-published")
        return [record.seq for record in planned]

    # -- garbage collection and the lease ----------------------------------------------------

    async def collect_garbage(
        self, retention_seconds: float, grace_seconds: float, now_us: int | None = None
    ) -> GcReport:
        """See :func:`litetool.storage.gc.collect_garbage`."""
        return await collect_garbage(
            self.index,
            self.fetch_manifest,
            retention_seconds,
            grace_seconds,
            _now_us() if now_us is None else now_us,
        )

    async def acquire_lease(
        self, writer_id: str, ttl_seconds: float, generation: str, now_us: int | None = None
    ) -> lease_io.Lease:
        return await lease_io.acquire_lease(self.store, writer_id, ttl_seconds, generation, now_us)

    async def renew_lease_if_needed(
        self, lease: lease_io.Lease, now_us: int | None = None
    ) -> lease_io.Lease:
        return await lease_io.renew_lease_if_needed(self.store, lease, now_us)

    async def release_lease(self, lease: lease_io.Lease) -> bool:
        return await lease_io.release_lease(self.store, lease)

    async def read_lease(self) -> lease_io.LeaseDocument | None:
        return await lease_io.read_lease(self.store)
