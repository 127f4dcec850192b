"""Garbage collection of a replica (docs/FORMAT.md sections 5, 7 and 8).

One run:

1. lists the whole root once; keys that do not parse are counted and never
   touched;
2. loads every generation's view (any unreadable or inconsistent generation
   stops the run: GC never guesses);
3. plans retention (``retention.py``); in a generation whose oldest retained
   snapshot opens a record of the view other than the first (record 0, or a
   compacted record that starts with that snapshot), the records of the view
   before it go ("trimming": nothing is rewritten; a generation is trimmed once
   compaction has put the snapshot at the start of a compacted record);
4. decides which records go: every record of an expired generation once its
   newest record is older than the grace period; the trimmed records and any
   record before the view; records covered by the view once every view record
   they overlap is older than the grace period (so a reader that listed before
   the compaction can still finish);
5. keeps every object named by a record that stays (segments, manifests and
   the chunks the manifests name) and deletes the other objects older than
   the grace period: first the records, then the objects.

Safety note: an object that no retained record names can be re-referenced by
a concurrent writer through deduplication (``put_object`` finds it existing).
Run GC from the process that holds the writer lease, serialised with its
syncs, or with the lease acquired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from litetool.errors import ObjectNotFound
from litetool.storage.concurrency import gather_limited
from litetool.storage.format.generation import GenerationIndex
from litetool.storage.format.keys import KeyKind, object_key, try_parse_key
from litetool.storage.format.manifest import SnapshotManifest
from litetool.storage.index import IndexReader, RecordKeys, RecordRef
from litetool.storage.retention import plan_retention
from litetool.storage.store import ObjectMeta, Store, delete_all, list_objects

#: Reads and verifies the snapshot manifest named by a digest (``Replica.fetch_manifest``).
FetchManifest = Callable[[str], Awaitable[SnapshotManifest]]


@dataclass(frozen=True, slots=True)
class GcReport:
    deleted_objects: int = 0
    deleted_object_bytes: int = 0
    deleted_records: int = 0
    retained_objects: int = 0
    young_objects: int = 0
    expired_generations: tuple[str, ...] = ()
    trimmed_generations: tuple[str, ...] = ()
    ignored_keys: int = 0


@dataclass(slots=True)
class _Listing:
    objects: dict[str, ObjectMeta]
    records: dict[str, RecordKeys]
    ignored_keys: int


async def _list_root(store: Store) -> _Listing:
    listing = _Listing({}, {}, 0)
    async for meta in list_objects(store, ""):
        parsed = try_parse_key(meta.key)
        if parsed is None:
            listing.ignored_keys += 1
        elif parsed.kind is KeyKind.OBJECT and parsed.digest is not None:
            listing.objects[parsed.digest] = meta
        elif parsed.generation is not None and parsed.seq is not None:
            listing.records.setdefault(parsed.generation, RecordKeys()).add(parsed, meta)
    return listing


def _trim_point(index: GenerationIndex, keep_from_txid: int) -> int:
    """How many records of the view retention no longer needs: those before the record
    that opens with the snapshot at *keep_from_txid* (0 when none does)."""
    for position in range(len(index.records) - 1, 0, -1):
        record = index.records[position]
        opens = record.compacted or record.first_seq == 0
        if (
            opens
            and record.snapshots
            and record.snapshots[0].txid == keep_from_txid
            and (not record.segments or record.segments[0].first_txid == keep_from_txid + 1)
        ):
            return position
    return 0


async def collect_garbage(
    reader: IndexReader,
    fetch_manifest: FetchManifest,
    retention_seconds: float,
    grace_seconds: float,
    now_us: int,
) -> GcReport:
    """Delete what no retained restore point needs (see the module docstring), from
    the replica root whose index records *reader* reads."""
    if retention_seconds < 0 or grace_seconds < 0:
        raise ValueError("retention and grace periods cannot be negative")
    cutoff_us = now_us - int(grace_seconds * 1_000_000)
    store = reader.store
    listing = await _list_root(store)
    generations = sorted(listing.records)
    loaded = await gather_limited(
        [
            (lambda g=generation: reader.load_view(g, listing.records[g]))
            for generation in generations
        ],
        reader.concurrency,
    )
    indexes = dict(zip(generations, loaded, strict=True))
    plan = plan_retention(loaded, now_us - int(retention_seconds * 1_000_000))

    trimmed: list[str] = []
    for generation, keep_from_txid in sorted(plan.keep_from.items()):
        index = indexes[generation]
        position = _trim_point(index, keep_from_txid)
        if position:
            indexes[generation] = GenerationIndex.from_records(generation, index.records[position:])
            trimmed.append(generation)

    doomed_records: list[str] = []
    named: set[str] = set()
    expired_deleted: list[str] = []
    extra_refs: list[tuple[str, RecordRef]] = []
    for generation in generations:
        keys = listing.records[generation]
        index = indexes[generation]
        if generation in plan.expired and all(
            meta.last_modified_us <= cutoff_us for meta in keys.metas.values()
        ):
            doomed_records += [ref.key for ref in keys.refs]
            expired_deleted.append(generation)
            continue
        named |= index.object_digests()
        view = keys.view()
        if [(r.first_seq, r.seq) for r in view[-len(index.records) :]] != [
            (r.first_seq, r.seq) for r in index.records
        ]:
            # The view changed between the listing and the load: what we listed
            # is out of date, so no record of this generation goes this time.
            extra_refs += [(generation, ref) for ref in keys.refs]
            continue
        view = view[len(view) - len(index.records) :]
        in_view = {ref.key for ref in view}
        for ref in keys.refs:
            if ref.key in in_view:
                continue
            if ref.seq < view[0].first_seq:
                doomed_records.append(ref.key)  # trimmed, or before the view anyway
                continue
            overlapping = [v for v in view if v.first_seq <= ref.seq and ref.first_seq <= v.seq]
            if all(
                v.key in keys.metas and keys.metas[v.key].last_modified_us <= cutoff_us
                for v in overlapping
            ):
                doomed_records.append(ref.key)
            else:
                extra_refs.append((generation, ref))

    # Records that stay but are not in a view (covered, within the grace period):
    # a reader may still be using them, so what they name stays too.
    extra = await gather_limited(
        [(lambda g=g, r=r: reader.fetch_record(g, r)) for g, r in extra_refs],
        reader.concurrency,
    )
    for record in extra:
        named |= {entry.digest for entry in record.segments}
        named |= {entry.manifest_digest for entry in record.snapshots}

    manifest_digests = sorted(
        digest
        for generation in generations
        if generation not in expired_deleted
        for digest in {entry.manifest_digest for entry in indexes[generation].snapshots}
    ) + sorted({entry.manifest_digest for record in extra for entry in record.snapshots})
    for digest in manifest_digests:
        if digest not in listing.objects:
            raise ObjectNotFound(
                object_key(digest),
                hint="a retained snapshot's manifest is missing; garbage collection stopped",
            )
    manifests = await gather_limited(
        [(lambda d=d: fetch_manifest(d)) for d in dict.fromkeys(manifest_digests)],
        reader.concurrency,
    )
    for manifest in manifests:
        named.update(manifest.chunks)

    doomed_objects: list[str] = []
    doomed_bytes = 0
    young = 0
    for digest, meta in listing.objects.items():
        if digest in named:
            continue
        if meta.last_modified_us <= cutoff_us:
            doomed_objects.append(object_key(digest))
            doomed_bytes += meta.size
        else:
            young += 1
    # Records before objects: a reader never sees a record naming a deleted object.
    await delete_all(store, doomed_records)
    await delete_all(store, doomed_objects)
    return GcReport(
        deleted_objects=len(doomed_objects),
        deleted_object_bytes=doomed_bytes,
        deleted_records=len(doomed_records),
        retained_objects=len(listing.objects) - len(doomed_objects) - young,
        young_objects=young,
        expired_generations=tuple(expired_deleted),
        trimmed_generations=tuple(trimmed),
        ignored_keys=listing.ignored_keys,
    )
