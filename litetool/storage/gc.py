"""Garbage collection of a replica (docs/FORMAT.md sections 5, 7 and 8).

One run:

1. lists the whole root once; keys that do not parse are counted and never
   touched;
2. loads every generation's view (any unreadable or inconsistent generation
   stops the run: GC never guesses);
3. plans retention (``retention.py``); a generation whose oldest retained
   snapshot is past its first one gets a new compacted record that leaves out
   what retention no longer needs ("pruning"; possible only when the view has
   an index record after its compacted record, so an idle generation is
   pruned after its next publish);
4. decides which records go: every record of an expired generation once its
   newest record is older than the grace period; records covered by a
   compacted record once *that* compacted record is older than the grace
   period (so a reader that listed before the compaction can still finish);
5. keeps every object named by a record that stays (segments, manifests and
   the chunks the manifests name) and deletes the other objects older than
   the grace period: first the records, then the objects.

Safety note: an object that no retained record names can be re-referenced by
a concurrent writer through deduplication (``put_object`` finds it existing).
Run GC from the process that holds the writer lease, serialised with its
syncs, or with the lease acquired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litetool.errors import ObjectNotFound
from litetool.storage.generation import GenerationIndex
from litetool.storage.keys import KeyKind, object_key, record_key, try_parse_key
from litetool.storage.retention import plan_retention
from litetool.storage.store import ObjectMeta

if TYPE_CHECKING:
    from litetool.storage.replica import RecordKeys, Replica

GC_WRITER = "litetool-gc"


@dataclass(frozen=True, slots=True)
class GcReport:
    deleted_objects: int = 0
    deleted_object_bytes: int = 0
    deleted_records: int = 0
    retained_objects: int = 0
    young_objects: int = 0
    expired_generations: tuple[str, ...] = ()
    pruned_generations: tuple[str, ...] = ()
    ignored_keys: int = 0


@dataclass(slots=True)
class _Listing:
    objects: dict[str, ObjectMeta]
    records: dict[str, RecordKeys]
    ignored_keys: int


async def _list_root(replica: Replica) -> _Listing:
    from litetool.storage.replica import RecordKeys

    listing = _Listing({}, {}, 0)
    async for meta in replica.store.list(""):
        parsed = try_parse_key(meta.key)
        if parsed is None:
            listing.ignored_keys += 1
        elif parsed.kind is KeyKind.OBJECT and parsed.digest is not None:
            listing.objects[parsed.digest] = meta
        elif parsed.generation is not None and parsed.seq is not None:
            keys = listing.records.setdefault(parsed.generation, RecordKeys())
            if parsed.kind is KeyKind.COMPACTED_RECORD:
                keys.compacted[parsed.seq] = meta
            else:
                keys.index[parsed.seq] = meta
    return listing


def _record_metas(keys: RecordKeys) -> list[tuple[int, bool, ObjectMeta]]:
    return [(seq, False, meta) for seq, meta in keys.index.items()] + [
        (seq, True, meta) for seq, meta in keys.compacted.items()
    ]


def _needs_pruning(index: GenerationIndex, keep_from_txid: int) -> bool:
    only_compacted = len(index.records) == 1 and index.records[0].compacted
    return keep_from_txid > index.first_txid and not only_compacted


async def collect_garbage(
    replica: Replica, retention_seconds: float, grace_seconds: float, now_us: int
) -> GcReport:
    """Delete what no retained restore point needs (see the module docstring)."""
    from litetool.storage.replica import gather_limited

    if retention_seconds < 0 or grace_seconds < 0:
        raise ValueError("retention and grace periods cannot be negative")
    cutoff_us = now_us - int(grace_seconds * 1_000_000)
    listing = await _list_root(replica)
    generations = sorted(listing.records)
    loaded = await gather_limited(
        [
            (lambda g=generation: replica.load_view(g, listing.records[g]))
            for generation in generations
        ],
        replica.concurrency,
    )
    indexes = dict(zip(generations, loaded, strict=True))
    plan = plan_retention(loaded, now_us - int(retention_seconds * 1_000_000))

    pruned: list[str] = []
    for generation, keep_from_txid in sorted(plan.keep_from.items()):
        index = indexes[generation]
        if _needs_pruning(index, keep_from_txid):
            await replica.write_compacted(
                index, keep_from_txid=keep_from_txid, writer=GC_WRITER, now_us=now_us
            )
            pruned.append(generation)
            keys = (await replica.list_record_keys(generation))[generation]
            listing.records[generation] = keys
            indexes[generation] = await replica.load_view(generation, keys)

    doomed_records: list[str] = []
    named: set[str] = set()
    expired_deleted: list[str] = []
    extra_records: list[tuple[str, int, bool]] = []
    for generation in generations:
        keys = listing.records[generation]
        index = indexes[generation]
        metas = _record_metas(keys)
        if generation in plan.expired and all(
            meta.last_modified_us <= cutoff_us for _, _, meta in metas
        ):
            doomed_records += [record_key(generation, seq, compacted=c) for seq, c, _ in metas]
            expired_deleted.append(generation)
            continue
        named |= index.object_digests()
        view = set(keys.view())
        base = keys.compacted.get(index.compacted_seq) if index.compacted_seq is not None else None
        for seq, compacted, _ in metas:
            if (seq, compacted) in view:
                continue
            if base is not None and base.last_modified_us <= cutoff_us:
                doomed_records.append(record_key(generation, seq, compacted=compacted))
            else:
                extra_records.append((generation, seq, compacted))

    # Records that stay but are not in a view (covered, within the grace period):
    # a reader may still be using them, so what they name stays too.
    extra = await gather_limited(
        [(lambda g=g, s=s, c=c: replica.fetch_record(g, s, c)) for g, s, c in extra_records],
        replica.concurrency,
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
        [(lambda d=d: replica.fetch_manifest(d)) for d in dict.fromkeys(manifest_digests)],
        replica.concurrency,
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
    await replica.store.delete(doomed_records)
    await replica.store.delete(doomed_objects)
    return GcReport(
        deleted_objects=len(doomed_objects),
        deleted_object_bytes=doomed_bytes,
        deleted_records=len(doomed_records),
        retained_objects=len(listing.objects) - len(doomed_objects) - young,
        young_objects=young,
        expired_generations=tuple(expired_deleted),
        pruned_generations=tuple(pruned),
        ignored_keys=listing.ignored_keys,
    )
