"""Garbage collection on an in-memory store with real objects (FORMAT.md section 8)."""

import itertools
import time

import pytest

from litetool.errors import CorruptObject, ObjectNotFound
from litetool.storage import (
    ObjectKind,
    Replica,
    SegmentDetail,
    SegmentTransaction,
    encode_segment,
    new_generation_id,
    object_key,
)
from litetool.storage.generation_writer import GenerationWriter
from litetool.storage.store import list_objects

PAGE = 512
SECOND = 1_000_000
HOUR = 3600
_names = itertools.count()


@pytest.fixture
def replica():
    return Replica.open(f"memory://gc-{next(_names)}")


def _now_us():
    return time.time_ns() // 1000


async def _snapshot(writer, txid, time_us, fill):
    return await writer.put_snapshot(
        [bytes([fill]) * PAGE * 2],
        txid=txid,
        time_us=time_us,
        page_size=PAGE,
        page_count=2,
        chunk_size=PAGE * 2,
    )


async def _segment(writer, txid, time_us):
    payload = encode_segment(
        PAGE, txid, [SegmentTransaction(time_us, 2, [1], bytes([txid]) * PAGE)]
    )
    return await writer.put_segment(
        payload,
        first_txid=txid,
        page_size=PAGE,
        frames=1,
        detail=SegmentDetail.create([time_us], [2]),
        keep_detail=True,
    )


async def _write_generation(replica, generation, start_us, last_txid, snapshot_txids=(0,)):
    """One record per txid: record 0 has the snapshot at 0; snapshots at other txids come
    with the record of that txid. Commit time of txid t is start_us + t seconds."""
    times = [start_us + txid * SECOND for txid in range(0, last_txid + 1)]
    writer = GenerationWriter(replica, "writer", now_us=iter(times).__next__)
    writer.start("first run", generation)
    for txid, time_us in enumerate(times):
        snapshots = ()
        if txid in snapshot_txids:
            snapshots = (await _snapshot(writer, txid, time_us, fill=txid + 1),)
        segments = () if txid == 0 else (await _segment(writer, txid, time_us),)
        await writer.publish(snapshots=snapshots, segments=segments)


async def _keys(replica):
    return sorted([meta.key async for meta in list_objects(replica.store, "")])


async def test_orphan_objects_wait_for_the_grace_period(replica):
    start = _now_us()
    generation = new_generation_id(start // 1000, 1)
    await _write_generation(replica, generation, start, 2)
    orphan = await replica.put_object(ObjectKind.SEGMENT, b"orphan upload, no record yet")
    report = await replica.collect_garbage(HOUR, HOUR, now_us=start)
    assert report.deleted_objects == 0 and report.young_objects == 1
    assert object_key(orphan.digest) in await _keys(replica)
    report = await replica.collect_garbage(HOUR, 10, now_us=start + 60 * SECOND)
    assert report.deleted_objects == 1 and report.deleted_object_bytes == orphan.stored_bytes
    assert object_key(orphan.digest) not in await _keys(replica)
    # everything the generation needs is still there
    index = await replica.index.load_generation(generation)
    for entry in index.segments:
        await replica.fetch_segment(entry.digest)


async def test_expired_generations_go_but_the_latest_always_stays(replica):
    start = _now_us()
    old = new_generation_id(start // 1000 - 10_000, 1)
    new = new_generation_id(start // 1000, 1)
    await _write_generation(replica, old, start - 100 * HOUR * SECOND, 3)
    await _write_generation(replica, new, start - 50 * HOUR * SECOND, 2)
    before = await _keys(replica)
    # 24 h retention: both generations are older than the window; the newest one is in force.
    report = await replica.collect_garbage(24 * HOUR, 10, now_us=start + 60 * SECOND)
    assert report.expired_generations == (old,)
    assert [info.generation for info in await replica.index.list_generations()] == [new]
    after = await _keys(replica)
    assert not any(old in key for key in after)
    assert len(after) < len(before)
    index = await replica.index.load_generation(new)
    assert index.last_txid == 2
    for entry in index.segments:
        await replica.fetch_segment(entry.digest)
    manifest = await replica.fetch_manifest(index.snapshots[0].manifest_digest)
    for digest in manifest.chunks:
        await replica.fetch_object(digest, ObjectKind.SNAPSHOT_CHUNK)


async def test_an_expired_generation_within_the_grace_period_is_kept(replica):
    start = _now_us()
    old = new_generation_id(start // 1000 - 10_000, 1)
    new = new_generation_id(start // 1000, 1)
    await _write_generation(replica, old, start - 100 * HOUR * SECOND, 1)
    await _write_generation(replica, new, start - 50 * HOUR * SECOND, 1)
    report = await replica.collect_garbage(24 * HOUR, HOUR, now_us=start)
    assert report.expired_generations == () and report.deleted_objects == 0
    assert len(await replica.index.list_generations()) == 2


async def _write_like_the_daemon(replica, generation, start_us, last_txid, snapshot_txids):
    """Record 0 holds the snapshot at 0; then one record per segment (txid t), and a
    snapshot at txid t in a record of its own right after t's, as the sync loop does.
    Commit time of txid t is start_us + t seconds."""
    writer = GenerationWriter(replica, "writer", now_us=lambda: start_us)
    writer.start("first run", generation)
    for txid in range(0, last_txid + 1):
        time_us = start_us + txid * SECOND
        if txid:
            await writer.publish(segments=[await _segment(writer, txid, time_us)])
        if txid in snapshot_txids:
            snapshot = await _snapshot(writer, txid, time_us, fill=txid + 1)
            await writer.publish(snapshots=[snapshot])


async def test_retention_trims_a_generation_at_a_compacted_snapshot(replica):
    start = _now_us()
    generation = new_generation_id(start // 1000, 1)
    await _write_like_the_daemon(replica, generation, start, 6, snapshot_txids=(0, 3))
    full = await replica.index.load_generation(generation)
    dropped = {full.snapshots[0].manifest_digest} | {s.digest for s in full.segments[:3]}
    # Window starts at txid 5's commit time: txid 5 needs the snapshot at 3 and segments 4..6.
    now_us = start + 100 * SECOND
    retention = (now_us - (start + 5 * SECOND)) / SECOND
    report = await replica.collect_garbage(retention, HOUR, now_us=now_us)
    # the snapshot at 3 opens no record but index record 4: nothing to trim yet
    assert report.trimmed_generations == () and report.deleted_records == 0
    assert await replica.compact(generation) == [3, 7]  # runs 0..3 and 4..7
    report = await replica.collect_garbage(retention, HOUR, now_us=now_us)
    assert report.trimmed_generations == (generation,)
    # compacted 0..3 and index records 0..3 are before the view; 4..7 wait for the grace
    # period of compacted 4..7, and the objects only they named for their own
    assert report.deleted_records == 5 and report.deleted_objects == 0
    trimmed = await replica.index.load_generation(generation)
    assert (trimmed.first_txid, trimmed.last_txid, trimmed.compacted_seq) == (3, 6, 7)
    assert [s.first_txid for s in trimmed.segments] == [4, 5, 6]

    later = now_us + 2 * HOUR * SECOND
    retention = (later - (start + 5 * SECOND)) / SECOND
    report = await replica.collect_garbage(retention, HOUR, now_us=later)
    assert report.deleted_records == 4  # index records 4..7, covered by compacted 4..7
    keys = await _keys(replica)
    assert all(object_key(digest) not in keys for digest in dropped)
    assert report.deleted_objects == len(dropped) + 1  # plus the first snapshot's chunk
    assert report.trimmed_generations == ()  # nothing new to trim
    index = await replica.index.load_generation(generation)
    assert index.first_txid == 3
    for entry in index.segments:
        await replica.fetch_segment(entry.digest)
    assert [k.rsplit("/", 2)[1] for k in keys if "/generations/" in f"/{k}"] == ["compacted"]


async def test_unknown_keys_are_never_deleted(replica):
    start = _now_us()
    await _write_generation(replica, new_generation_id(start // 1000, 1), start, 1)
    strangers = ["README", "objects/zz/notadigest", "generations/x/index/1", "lease.json.bak"]
    for key in strangers:
        await replica.store.put(key, b"not ours")
    report = await replica.collect_garbage(0, 0, now_us=start + HOUR * SECOND)
    assert report.ignored_keys == len(strangers)
    keys = await _keys(replica)
    assert all(key in keys for key in strangers)


async def test_a_missing_manifest_stops_gc_before_any_delete(replica):
    start = _now_us()
    generation = new_generation_id(start // 1000, 1)
    await _write_generation(replica, generation, start, 1)
    orphan = await replica.put_object(ObjectKind.SEGMENT, b"orphan")
    index = await replica.index.load_generation(generation)
    await replica.store.delete([object_key(index.snapshots[0].manifest_digest)])
    with pytest.raises(ObjectNotFound, match="objects/"):
        await replica.collect_garbage(0, 0, now_us=start + HOUR * SECOND)
    assert object_key(orphan.digest) in await _keys(replica)


async def test_a_corrupt_record_stops_gc(replica):
    start = _now_us()
    generation = new_generation_id(start // 1000, 1)
    await _write_generation(replica, generation, start, 1)
    orphan = await replica.put_object(ObjectKind.SEGMENT, b"orphan")
    key = f"generations/{generation}/index/0000000000000001"
    data, _ = await replica.store.get(key, max_bytes=10**6)
    await replica.store.put(key, bytes(data)[:-1], mode="overwrite")
    with pytest.raises(CorruptObject):
        await replica.collect_garbage(0, 0, now_us=start + HOUR * SECOND)
    assert object_key(orphan.digest) in await _keys(replica)


async def test_negative_periods_are_refused(replica):
    with pytest.raises(ValueError):
        await replica.collect_garbage(-1, 0)
