"""The storage contract, run against every backend (memory, local, moto, SeaweedFS, Azurite).

Real stores only: objects are corrupted by writing raw bytes under their keys through
obstore directly (the store ``build_store`` makes from the same location), never by
mocking. ``object_store_backend`` (tests/conftest.py) gives each test a fresh, empty
replica root.
"""

from __future__ import annotations

import time

import pytest

from litetool.errors import (
    CorruptObject,
    ObjectNotFound,
    ReplicaConflict,
    ReplicaFormatError,
)
from litetool.storage import (
    MARKER_KEY,
    IndexRecord,
    ObjectKind,
    Replica,
    SegmentEntry,
    SegmentTransaction,
    encode_segment,
    index_record_key,
    new_generation_id,
    object_key,
    parse_location,
)
from litetool.storage.obstore_store import build_store
from litetool.storage.store import list_objects

PAGE = 512
SECOND = 1_000_000
HOUR = 3600


def _open(backend) -> Replica:
    return Replica.open(backend.url, backend.options, name=backend.name)


def _raw_store(backend):
    """The plain obstore store of the same root (to plant raw bytes)."""
    return build_store(parse_location(backend.url, backend.options), create=True)


def _now_us() -> int:
    return time.time_ns() // 1000


def _segment_payload(first_txid: int, count: int = 1, fill: int = 0) -> bytes:
    return encode_segment(
        PAGE,
        first_txid,
        [
            SegmentTransaction(1_000 + first_txid + i, 2, [1 + i % 2], bytes([fill + i]) * PAGE)
            for i in range(count)
        ],
    )


async def _put_segment(replica, first_txid, time_us, count=1, fill=0):
    payload = encode_segment(
        PAGE,
        first_txid,
        [
            SegmentTransaction(time_us + i * SECOND, 2, [1], bytes([(fill + i) % 256]) * PAGE)
            for i in range(count)
        ],
    )
    ref = await replica.put_object(ObjectKind.SEGMENT, payload)
    times = [time_us + i * SECOND for i in range(count)]
    return SegmentEntry.create(
        ref.digest, first_txid, ref.stored_bytes, PAGE, count, times, [2] * count
    )


async def _put_snapshot(replica, txid, time_us, fill):
    return await replica.put_snapshot(
        [bytes([fill]) * PAGE * 2, bytes([fill + 1]) * PAGE],
        txid=txid,
        time_us=time_us,
        page_size=PAGE,
        page_count=3,
        chunk_size=PAGE * 2,
    )


async def _write_generation(replica, generation, start_us, last_txid, snapshot_txids=(0,)):
    """As the sync loop writes: record 0 holds the snapshot at txid 0, then one record per
    txid t (commit time start + t s), and a snapshot at t in a record of its own after."""
    seq = 0
    for txid in range(last_txid + 1):
        time_us = start_us + txid * SECOND
        published = []
        if txid:
            published.append(((), (await _put_segment(replica, txid, time_us, fill=txid),)))
        if txid in snapshot_txids:
            snapshot = await _put_snapshot(replica, txid, time_us, fill=txid * 2 + 1)
            published.append(((snapshot,), ()))
        for snapshots, segments in published:
            await replica.publish_record(
                IndexRecord(
                    generation,
                    seq,
                    time_us,
                    "contract:1:00000000",
                    snapshots,
                    segments,
                    reason="first run" if seq == 0 else None,
                )
            )
            seq += 1


async def _keys(replica):
    return sorted([meta.key async for meta in list_objects(replica.store, "")])


# -- format marker -------------------------------------------------------------------------


async def test_format_marker_create_and_verify(object_store_backend):
    replica = _open(object_store_backend)
    with pytest.raises(ObjectNotFound):
        await replica.ensure_format(create=False)
    assert await replica.ensure_format(create=True) == 1
    assert await replica.ensure_format(create=True) == 1
    assert await _open(object_store_backend).ensure_format(create=False) == 1


async def test_unknown_format_version_is_rejected(object_store_backend):
    raw = _raw_store(object_store_backend)
    await raw.put_async(MARKER_KEY, b'{"format":"litetool-replica","version":99}')
    replica = _open(object_store_backend)
    for create in (True, False):
        with pytest.raises(ReplicaFormatError, match="version 99"):
            await replica.ensure_format(create=create)


# -- objects -------------------------------------------------------------------------------


async def test_put_object_is_idempotent_and_fetch_verifies(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    payload = _segment_payload(1, count=3)
    first = await replica.put_object(ObjectKind.SEGMENT, payload)
    second = await replica.put_object(ObjectKind.SEGMENT, payload)
    assert first.digest == second.digest and first.stored_bytes == second.stored_bytes
    assert first.uploaded and not second.uploaded
    assert bytes(await replica.fetch_object(first.digest, ObjectKind.SEGMENT)) == payload
    segment = await replica.fetch_segment(first.digest)
    assert (segment.first_txid, segment.last_txid) == (1, 3)
    stats = replica.stats.snapshot()
    assert stats["put"].requests >= 3 and stats["get"].bytes >= first.stored_bytes
    with pytest.raises(ObjectNotFound):
        await replica.fetch_object("0" * 64, ObjectKind.SEGMENT)


async def test_corrupt_truncated_and_renamed_objects_are_detected(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    raw = _raw_store(object_store_backend)
    refs = [
        await replica.put_object(ObjectKind.SEGMENT, _segment_payload(t, fill=t)) for t in (1, 2, 3)
    ]
    flipped_key, truncated_key, renamed_key = (object_key(ref.digest) for ref in refs)

    async def read(key):
        return bytes(await (await raw.get_async(key)).bytes_async())

    original_a = await read(flipped_key)
    flipped = bytearray(original_a)
    flipped[60] ^= 0x04
    await raw.put_async(flipped_key, bytes(flipped))
    original_b = await read(truncated_key)
    await raw.put_async(truncated_key, original_b[: len(original_b) // 2])
    await raw.put_async(renamed_key, original_a)  # object A's bytes under C's name
    for ref in refs:
        with pytest.raises(CorruptObject, match="does not match its name") as info:
            await replica.fetch_object(ref.digest, ObjectKind.SEGMENT)
        assert info.value.key == object_key(ref.digest)


# -- index records -------------------------------------------------------------------------


async def test_publish_record_conflict(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    generation = new_generation_id(1_764_040_000_000, 7)
    snapshot = await _put_snapshot(replica, 0, 100, fill=1)
    mine = IndexRecord(generation, 0, 1, "writer-a", (snapshot,), reason="first run")
    await replica.publish_record(mine)
    await replica.publish_record(mine)  # a retry after a lost response
    theirs = IndexRecord(generation, 0, 2, "writer-b", (snapshot,), reason="first run")
    with pytest.raises(ReplicaConflict) as info:
        await _open(object_store_backend).publish_record(theirs)
    assert f"index record 0 of generation {generation}" in info.value.message


async def test_generations_list_load_and_compact(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    start = 1_764_040_000 * SECOND
    old = new_generation_id(start // 1000, 1)
    new = new_generation_id(start // 1000 + 5_000, 2)
    await _write_generation(replica, old, start, 3)
    await _write_generation(replica, new, start + 5 * SECOND, 4, snapshot_txids=(0, 2))
    infos = await replica.index.list_generations()
    assert [info.generation for info in infos] == [old, new]
    assert [(i.first_txid, i.last_txid, i.record_count) for i in infos] == [(0, 3, 4), (0, 4, 6)]
    assert infos[1].last_commit_time_us == start + 9 * SECOND
    index = await replica.index.load_generation(new)
    assert [index.commit_time_us(t) for t in range(5)] == [
        start + (5 + t) * SECOND for t in range(5)
    ]
    assert index.snapshot_at_or_before(3).txid == 2

    # one compacted record per run of records that starts with a snapshot
    assert await replica.compact(new) == [2, 5]
    compacted = await replica.index.load_generation(new)
    assert [(r.first_seq, r.seq) for r in compacted.records] == [(0, 2), (3, 5)]
    assert all(r.compacted for r in compacted.records)
    assert compacted.segments == index.segments and compacted.snapshots == index.snapshots
    # the next writer record continues after the compacted ones
    segment = await _put_segment(replica, 5, start + 20 * SECOND, fill=9)
    await replica.publish_record(IndexRecord(new, 6, 0, "w", (), (segment,)))
    assert (await replica.index.load_generation(new)).last_txid == 5
    for entry in (await replica.index.load_generation(new)).segments:
        await replica.fetch_segment(entry.digest)


async def test_corrupt_or_renamed_record_is_detected(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    raw = _raw_store(object_store_backend)
    generation = new_generation_id(1_764_040_000_000, 3)
    await _write_generation(replica, generation, 1_764_040_000 * SECOND, 2)
    record1 = bytes(await (await raw.get_async(index_record_key(generation, 1))).bytes_async())
    await raw.put_async(index_record_key(generation, 2), record1)  # renamed: 1's bytes as 2
    with pytest.raises(CorruptObject, match="holds index record 1"):
        await replica.index.load_generation(generation)
    flipped = bytearray(record1)
    flipped[-2] ^= 0x10
    await raw.put_async(index_record_key(generation, 2), bytes(flipped))
    with pytest.raises(CorruptObject):
        await replica.index.load_generation(generation)


async def test_hostile_keys_in_listings_are_ignored(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    raw = _raw_store(object_store_backend)
    generation = new_generation_id(1_764_040_000_000, 4)
    await _write_generation(replica, generation, 1_764_040_000 * SECOND, 1)
    hostile = [
        f"generations/{generation}/index/000000000000000g",
        f"generations/{generation}/index/00000000000000001",
        f"generations/{generation}/index/0000000000000005.partial",
        f"generations/{generation.upper()}/index/0000000000000000",
        "generations/notes.txt",
        "objects/zz/" + "z" * 64,
        "objects/ab/" + "cd" * 32,
        "README",
    ]
    for key in hostile:
        await raw.put_async(key, b"not litetool's")
    [info] = await replica.index.list_generations()
    assert (info.generation, info.record_count, info.last_txid) == (generation, 2, 1)
    report = await replica.collect_garbage(0, 0, now_us=_now_us() + HOUR * SECOND)
    assert report.ignored_keys == len(hostile)
    keys = await _keys(replica)
    assert all(key in keys for key in hostile)


# -- garbage collection --------------------------------------------------------------------


async def test_gc_respects_grace_and_retention(object_store_backend):
    replica = _open(object_store_backend)
    await replica.ensure_format(create=True)
    start = _now_us()
    old = new_generation_id(start // 1000 - 10_000, 1)
    new = new_generation_id(start // 1000, 1)
    await _write_generation(replica, old, start - 100 * HOUR * SECOND, 2)
    await _write_generation(replica, new, start - 50 * HOUR * SECOND, 6, snapshot_txids=(0, 3))
    orphan = await replica.put_object(ObjectKind.SEGMENT, _segment_payload(50, fill=50))
    full = await replica.index.load_generation(new)
    dropped = {full.snapshots[0].manifest_digest} | {s.digest for s in full.segments[:3]}
    before = await _keys(replica)

    # 24 h retention: only the latest restore point (new, txid 6) is needed, from the
    # snapshot at txid 3. Until a compacted record starts with that snapshot, nothing
    # can be trimmed, and inside the grace period nothing else is deleted.
    report = await replica.collect_garbage(24 * HOUR, HOUR, now_us=start + 60 * SECOND)
    assert (report.deleted_objects, report.deleted_records) == (0, 0)
    assert report.trimmed_generations == () and report.expired_generations == ()
    assert set(before) <= set(await _keys(replica))
    assert await replica.compact(new) == [3, 7]
    # Now the view starts at compacted 4..7: the records before it go at once, the
    # objects only they named wait for the grace period.
    report = await replica.collect_garbage(24 * HOUR, HOUR, now_us=start + 60 * SECOND)
    assert (report.deleted_objects, report.deleted_records) == (0, 5)
    assert report.trimmed_generations == (new,) and report.expired_generations == ()
    assert report.young_objects >= 1
    trimmed = await replica.index.load_generation(new)
    assert (trimmed.first_txid, trimmed.last_txid, trimmed.compacted_seq) == (3, 6, 7)

    # One grace period later everything unneeded goes: the old generation, the covered
    # records, what the trimmed view dropped, and the orphan upload.
    report = await replica.collect_garbage(24 * HOUR, HOUR, now_us=start + 2 * HOUR * SECOND)
    assert report.expired_generations == (old,)
    assert report.deleted_records == 3 + 4  # the old generation; index records 4..7
    keys = await _keys(replica)
    assert object_key(orphan.digest) not in keys
    assert not any(old in key for key in keys)
    assert all(object_key(digest) not in keys for digest in dropped)
    assert MARKER_KEY in keys
    assert [info.generation for info in await replica.index.list_generations()] == [new]
    latest = await replica.index.load_generation(new)
    assert (latest.first_txid, latest.last_txid) == (3, 6)
    for entry in latest.segments:
        await replica.fetch_segment(entry.digest)
    for snapshot in latest.snapshots:
        manifest = await replica.fetch_manifest(snapshot.manifest_digest)
        for digest in manifest.chunks:
            await replica.fetch_object(digest, ObjectKind.SNAPSHOT_CHUNK)

    # Idempotent: a second run finds nothing more to do.
    report = await replica.collect_garbage(24 * HOUR, HOUR, now_us=start + 3 * HOUR * SECOND)
    assert (report.deleted_objects, report.deleted_records, report.trimmed_generations) == (
        0,
        0,
        (),
    )


# -- lease ---------------------------------------------------------------------------------


async def test_lease_conflict_takeover_and_release(object_store_backend):
    first = _open(object_store_backend)
    second = _open(object_store_backend)
    await first.ensure_format(create=True)
    generation = new_generation_id(1_764_040_000_000, 5)
    now = _now_us()
    lease = await first.acquire_lease("host-a:1:aaaaaaaa", 30, generation, now_us=now)
    with pytest.raises(ReplicaConflict, match="host-a:1:aaaaaaaa"):
        await second.acquire_lease("host-b:2:bbbbbbbb", 30, generation, now_us=now + SECOND)
    requests = first.stats.total_requests
    assert await first.renew_lease_if_needed(lease, now_us=now + 5 * SECOND) is lease
    assert first.stats.total_requests == requests  # idle: no request
    lease = await first.renew_lease_if_needed(lease, now_us=now + 20 * SECOND)
    assert lease.expires_us == now + 50 * SECOND
    with pytest.raises(ReplicaConflict):
        await second.acquire_lease("host-b:2:bbbbbbbb", 30, generation, now_us=now + 40 * SECOND)
    taken = await second.acquire_lease(
        "host-b:2:bbbbbbbb", 30, generation, now_us=now + 51 * SECOND
    )
    with pytest.raises(ReplicaConflict, match="lost the replica lease"):
        await first.renew_lease_if_needed(lease, now_us=now + 52 * SECOND)
    assert not await first.release_lease(lease)
    assert await second.release_lease(taken)
    assert await first.read_lease() is None
