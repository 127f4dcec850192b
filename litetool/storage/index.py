"""Reading a replica's index records: listing their keys, loading views and tips.

An :class:`IndexReader` is the one reader of a replica's index records
(docs/FORMAT.md section 5). It lists record keys (every key read from a
listing is validated; unknown keys are ignored), fetches and verifies
records, and loads what each reader needs of them:

- the **view** of a generation (:meth:`IndexReader.load_generation`,
  :meth:`IndexReader.list_generations`; GC loads views from its own listing
  of the whole root with :meth:`IndexReader.load_view`), or its records by
  key for a reader that keeps the records it has read (the TUI's
  ``CachedIndex``: :meth:`IndexReader.fetch_view`);
- the **known part** of a generation, up to its first broken record, for a
  restore that plans around a damaged replica
  (:meth:`IndexReader.load_known_parts`);
- the **tip**, for a writer that resumes a generation
  (:meth:`IndexReader.load_tip`).

Writing records (publishing, compaction) is ``Replica``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from litetool.errors import (
    CorruptObject,
    LitetoolError,
    ObjectNotFound,
    ReplicaFormatError,
)
from litetool.storage.concurrency import gather_limited, in_thread_if_large
from litetool.storage.format.envelope import (
    MAX_DOCUMENT_BYTES,
    ObjectKind,
    decode_object,
    max_stored_bytes,
)
from litetool.storage.format.generation import (
    GenerationIndex,
    GenerationInfo,
    check_contiguous,
    walk_view,
)
from litetool.storage.format.keys import (
    GENERATIONS_PREFIX,
    KeyKind,
    ParsedKey,
    generation_prefix,
    index_record_key,
    record_key,
    try_parse_key,
    validate_generation,
)
from litetool.storage.format.records import IndexRecord, decode_record
from litetool.storage.store import ObjectMeta, Store, list_objects

#: What a broken index record raises while a generation loads.
_RECORD_ERRORS = (CorruptObject, ObjectNotFound, ReplicaFormatError)


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One record key from a listing: the records ``first_seq..seq`` it stands for."""

    seq: int
    first_seq: int
    compacted: bool
    key: str


@dataclass(slots=True)
class RecordKeys:
    """The record keys of one generation, from a listing."""

    refs: list[RecordRef] = field(default_factory=list)
    metas: dict[str, ObjectMeta] = field(default_factory=dict)

    def add(self, parsed: ParsedKey, meta: ObjectMeta) -> None:
        """A record key from a listing (*parsed*: its ``parse_key``)."""
        assert parsed.seq is not None
        compacted = parsed.kind is KeyKind.COMPACTED_RECORD
        ref = RecordRef(parsed.seq, parsed.first_seq or 0, compacted, meta.key)
        self.refs.append(ref)
        self.metas[ref.key] = meta

    def view(self) -> list[RecordRef]:
        """The records a reader loads, oldest first (see ``walk_view``)."""
        return walk_view(self.refs)

    def __len__(self) -> int:
        return len(self.refs)


@dataclass(frozen=True, slots=True)
class GenerationTip:
    """The end of a generation, as a resuming writer needs it (``IndexReader.load_tip``)."""

    generation: str
    last_txid: int
    next_seq: int
    snapshot_txid: int  # the latest snapshot's
    snapshot_time_us: int
    records_since_compaction: int = 0  # index records after the view's last compacted one


@dataclass(frozen=True, slots=True)
class KnownPart:
    """A generation as far as its records can be read: ``index`` is the generation as
    the records before the first broken one describe it (None when none of them is
    usable); ``error`` (which names it) and ``key`` say which record broke, if one did."""

    generation: str
    index: GenerationIndex | None
    key: str = ""
    error: LitetoolError | None = None


def record_ref(record: IndexRecord) -> RecordRef:
    """The key a record is written under (format 2 keys for compacted records)."""
    key = record_key(
        record.generation,
        record.seq,
        compacted=record.compacted,
        first_seq=record.first_seq if record.compacted else None,
    )
    return RecordRef(record.seq, record.first_seq, record.compacted, key)


class IndexReader:
    """The index records of one replica root (see the module docstring)."""

    def __init__(self, store: Store, *, max_object_bytes: int, concurrency: int) -> None:
        self.store = store
        self.max_object_bytes = max_object_bytes
        self.concurrency = concurrency

    async def fetch_record(self, generation: str, ref: RecordRef) -> IndexRecord:
        """Download and verify one record; CorruptObject if it is not what its key says."""
        max_bytes = min(self.max_object_bytes, max_stored_bytes(MAX_DOCUMENT_BYTES))
        data, _ = await self.store.get(ref.key, max_bytes=max_bytes)
        payload = await in_thread_if_large(
            len(data), decode_object, ref.key, data, ObjectKind.INDEX_RECORD, None
        )
        try:
            record = await in_thread_if_large(len(payload), decode_record, payload)
        except ReplicaFormatError as exc:
            raise ReplicaFormatError(f"{ref.key}: {exc.message}", hint=exc.hint) from exc
        found = (record.generation, record.seq, record.first_seq, record.compacted)
        if found != (generation, ref.seq, ref.first_seq, ref.compacted):
            covers = f"records {record.first_seq}..{record.seq}" if record.compacted else ""
            raise CorruptObject(
                ref.key,
                f"holds {'compacted' if record.compacted else 'index'} record {record.seq} "
                f"of generation {record.generation} {covers}".rstrip(),
            )
        return record

    async def fetch_records(self, generation: str, refs: Iterable[RecordRef]) -> list[IndexRecord]:
        """:meth:`fetch_record` for each of *refs*, in parallel; results in order."""
        return await gather_limited(
            ((lambda ref=ref: self.fetch_record(generation, ref)) for ref in refs),
            self.concurrency,
        )

    async def list_record_keys(self, generation: str | None = None) -> dict[str, RecordKeys]:
        """Record keys per generation (one listing; invalid keys are ignored)."""
        prefix = GENERATIONS_PREFIX if generation is None else generation_prefix(generation)
        found: dict[str, RecordKeys] = {}
        async for meta in list_objects(self.store, prefix):
            parsed = try_parse_key(meta.key)
            if parsed is None or parsed.generation is None or parsed.seq is None:
                continue
            found.setdefault(parsed.generation, RecordKeys()).add(parsed, meta)
        return found

    async def fetch_view(
        self,
        generation: str,
        keys: RecordKeys,
        known: Mapping[str, IndexRecord] | None = None,
    ) -> dict[str, IndexRecord]:
        """The records a reader needs (the view of a listing's *keys*), by key, oldest
        first; those in *known* (read before: a record never changes once written)
        are not fetched again. A record that vanished since the listing (GC trimmed
        or compacted it) means one more listing and fetch."""
        known = {} if known is None else known
        try:
            return await self._fetch_view(generation, keys.view(), known)
        except ObjectNotFound:
            fresh = (await self.list_record_keys(generation)).get(generation)
            if fresh is None:
                raise
            return await self._fetch_view(generation, fresh.view(), known)

    async def _fetch_view(
        self, generation: str, view: list[RecordRef], known: Mapping[str, IndexRecord]
    ) -> dict[str, IndexRecord]:
        missing = [ref for ref in view if ref.key not in known]
        records = await self.fetch_records(generation, missing)
        fetched = {ref.key: record for ref, record in zip(missing, records, strict=True)}
        return {ref.key: known[ref.key] if ref.key in known else fetched[ref.key] for ref in view}

    async def load_view(self, generation: str, keys: RecordKeys) -> GenerationIndex:
        """Fetch the records a reader needs (from a listing) and validate them
        (:meth:`fetch_view`)."""
        records = await self.fetch_view(generation, keys)
        return GenerationIndex.from_records(generation, list(records.values()))

    async def load_generation(self, generation: str) -> GenerationIndex:
        """The validated index of *generation* (ObjectNotFound if it has no records)."""
        validate_generation(generation)
        keys = (await self.list_record_keys(generation)).get(generation)
        if keys is None:
            raise ObjectNotFound(
                generation_prefix(generation), hint=f"no generation {generation} here"
            )
        return await self.load_view(generation, keys)

    async def list_generations(self) -> list[GenerationInfo]:
        """Every generation with records, oldest first."""
        listing = await self.list_record_keys()
        generations = sorted(listing)
        indexes = await gather_limited(
            (
                (lambda generation=generation: self.load_view(generation, listing[generation]))
                for generation in generations
            ),
            self.concurrency,
        )
        return [
            GenerationInfo.from_index(index, len(listing[index.generation])) for index in indexes
        ]

    async def load_tip(self, generation: str) -> GenerationTip:
        """Where *generation* ends, for a writer that resumes it: read from the view's
        last compacted record on, and further back only as far as the latest snapshot,
        so the cost does not grow with the generation (ObjectNotFound if it has no
        records; ReplicaFormatError if the records read do not follow each other)."""
        validate_generation(generation)
        keys = (await self.list_record_keys(generation)).get(generation)
        view = keys.view() if keys is not None else []
        if not view:
            raise ObjectNotFound(
                generation_prefix(generation), hint=f"no generation {generation} here"
            )
        start = max((i for i, ref in enumerate(view) if ref.compacted), default=0)
        records = await self.fetch_records(generation, view[start:])
        segments = [segment for record in records for segment in record.segments]
        end = check_contiguous(generation, segments, None)
        snapshots = [snapshot for record in records for snapshot in record.snapshots]
        position = start
        while not snapshots and position > 0:
            position -= 1
            snapshots = list((await self.fetch_record(generation, view[position])).snapshots)
        if not snapshots:
            raise ReplicaFormatError(f"generation {generation} has no snapshot")
        latest = snapshots[-1]
        return GenerationTip(
            generation=generation,
            last_txid=latest.txid if end is None else max(end - 1, latest.txid),
            next_seq=view[-1].seq + 1,
            snapshot_txid=latest.txid,
            snapshot_time_us=latest.time_us,
            records_since_compaction=len(view) - start - (1 if view[start].compacted else 0),
        )

    # -- a damaged replica -----------------------------------------------------------------

    async def load_known_parts(self) -> list[KnownPart]:
        """Every generation with records, oldest first, each as far as its records can
        be read (see :meth:`load_known_part`)."""
        listing = await self.list_record_keys()
        return await gather_limited(
            (
                (lambda g=generation: self.load_known_part(g, listing[g]))
                for generation in sorted(listing)
            ),
            self.concurrency,
        )

    async def load_known_part(self, generation: str, keys: RecordKeys) -> KnownPart:
        """The generation's index, or the part of it before its first broken record
        (corrupt, missing, or breaking the rules of the view)."""
        try:
            return KnownPart(generation, await self.load_view(generation, keys))
        except _RECORD_ERRORS:
            pass
        # Slow path, only for a generation that failed: find the first broken record.
        fresh = (await self.list_record_keys(generation)).get(generation)
        refs = list(fresh.refs) if fresh is not None else list(keys.refs)
        error: LitetoolError | None = None
        key = ""
        view = walk_view(refs)
        while view and view[0].first_seq != 0 and not view[0].compacted:
            missing = view[0].first_seq - 1
            key = index_record_key(generation, missing)
            # Not listed: gone, or something a listing skips (a FIFO in a directory).
            found = await self._fetch_or_error(generation, RecordRef(missing, missing, False, key))
            if isinstance(found, LitetoolError) and not isinstance(found, ObjectNotFound):
                error = found
            else:
                error = ObjectNotFound(key, hint="the records after it cannot be used without it")
            view = walk_view([ref for ref in refs if ref.seq < missing])
        records: list[IndexRecord] = []
        fetched = await gather_limited(
            ((lambda ref=ref: self._fetch_or_error(generation, ref)) for ref in view),
            self.concurrency,
        )
        for ref, result in zip(view, fetched, strict=True):
            if isinstance(result, LitetoolError):
                key, error = ref.key, result
                break
            records.append(result)
        # The longest prefix that keeps the generation's rules (prefixes of a valid view
        # are valid, so the first record that breaks one is found by bisection).
        index, valid = _valid_prefix(generation, records)
        if valid < len(records):
            key = view[valid].key
            try:
                GenerationIndex.from_records(generation, records[: valid + 1])
            except ReplicaFormatError as exc:
                error = ReplicaFormatError(f"{key}: {exc.message}")
        if error is None and index is not None:
            return KnownPart(generation, index)  # it loads now (a record moved by GC meanwhile)
        if error is None:
            key = index_record_key(generation, 0)
            error = ObjectNotFound(key, hint=f"generation {generation} has no records left")
        return KnownPart(generation, index, key, error)

    async def _fetch_or_error(self, generation: str, ref: RecordRef) -> IndexRecord | LitetoolError:
        try:
            return await self.fetch_record(generation, ref)
        except _RECORD_ERRORS as exc:
            return exc


def _valid_prefix(
    generation: str, records: list[IndexRecord]
) -> tuple[GenerationIndex | None, int]:
    """The index of the longest valid prefix of *records*, and its length."""

    def index_of(count: int) -> GenerationIndex | None:
        if count == 0:
            return None
        try:
            return GenerationIndex.from_records(generation, records[:count])
        except ReplicaFormatError:
            return None

    whole = index_of(len(records))
    if whole is not None:
        return whole, len(records)
    low, high = 0, len(records)  # index_of(low) is valid or low == 0; high is invalid
    best: GenerationIndex | None = None
    while high - low > 1:
        middle = (low + high) // 2
        found = index_of(middle)
        if found is not None:
            low, best = middle, found
        else:
            high = middle
    return best, low
