"""Replica API on in-memory and local stores: format marker, objects, records, snapshots."""

import asyncio
import itertools

import pytest
from storage_builders import GENERATION, record, segment

from litetool.errors import (
    CorruptObject,
    ObjectNotFound,
    ReplicaConflict,
    ReplicaFormatError,
)
from litetool.storage import (
    MARKER_KEY,
    ObjectKind,
    Replica,
    SegmentTransaction,
    decode_object,
    encode_segment,
    index_record_key,
    object_key,
)
from litetool.storage.concurrency import THREAD_THRESHOLD_BYTES
from litetool.storage.replica import SNAPSHOT_CONCURRENCY

_names = itertools.count()


@pytest.fixture
def replica():
    return Replica.open(f"memory://replica-api-{next(_names)}")


def _segment_payload(first_txid=1, count=2, page_size=512):
    return encode_segment(
        page_size,
        first_txid,
        [
            SegmentTransaction(1_000 + i, 2, [1 + i % 2], bytes([i % 256]) * page_size)
            for i in range(count)
        ],
    )


async def test_format_marker_create_then_verify(replica):
    with pytest.raises(ObjectNotFound) as info:
        await replica.ensure_format(create=False)
    assert "no litetool replica" in info.value.hint
    assert await replica.ensure_format(create=True) == 1
    assert await replica.ensure_format(create=True) == 1
    assert await replica.ensure_format(create=False) == 1
    data, _ = await replica.store.get(MARKER_KEY, max_bytes=100)
    assert bytes(data) == b'{"format":"litetool-replica","version":1}'


@pytest.mark.parametrize(
    "marker, match",
    [
        (b'{"format":"litetool-replica","version":2}', "version 2 is not supported"),
        (b'{"format":"other","version":1}', "not a litetool replica"),
        (b'{"format":"litetool-replica"}', "version is missing"),
        (b"garbage", "not UTF-8 JSON"),
    ],
)
async def test_unknown_marker_is_refused(replica, marker, match):
    await replica.store.put(MARKER_KEY, marker)
    with pytest.raises(ReplicaFormatError, match=match):
        await replica.ensure_format(create=True)


async def test_put_object_is_content_addressed_and_idempotent(replica):
    payload = _segment_payload()
    first = await replica.put_object(ObjectKind.SEGMENT, payload)
    again = await replica.put_object(ObjectKind.SEGMENT, payload)
    assert first.digest == again.digest and first.uploaded and not again.uploaded
    data, meta = await replica.store.get(object_key(first.digest), max_bytes=10**6)
    assert meta.size == first.stored_bytes
    assert bytes(decode_object("k", data, ObjectKind.SEGMENT, first.digest)) == payload
    assert bytes(await replica.fetch_object(first.digest, ObjectKind.SEGMENT)) == payload
    segment_ = await replica.fetch_segment(first.digest)
    assert segment_.last_txid == 2


async def test_large_objects_round_trip_through_worker_threads(replica):
    payload = _segment_payload(count=THREAD_THRESHOLD_BYTES // 4096 + 4, page_size=4096)
    ref = await replica.put_object(ObjectKind.SEGMENT, payload)
    assert bytes(await replica.fetch_object(ref.digest, ObjectKind.SEGMENT)) == payload


async def test_fetch_refuses_oversized_objects_before_reading(replica):
    ref = await replica.put_object(ObjectKind.SEGMENT, _segment_payload())
    replica.max_object_bytes = ref.stored_bytes - 1
    with pytest.raises(CorruptObject, match="more than the"):
        await replica.fetch_object(ref.digest, ObjectKind.SEGMENT)
    assert replica.stats.snapshot()["get"].bytes == 0


async def test_fetch_with_the_wrong_kind_is_corrupt(replica):
    ref = await replica.put_object(ObjectKind.SEGMENT, _segment_payload())
    with pytest.raises(CorruptObject, match="kind 1, expected 3"):
        await replica.fetch_manifest(ref.digest)


async def test_malformed_segment_inside_a_valid_envelope_is_corrupt(replica):
    ref = await replica.put_object(ObjectKind.SEGMENT, b"not a segment")
    with pytest.raises(CorruptObject, match="malformed segment"):
        await replica.fetch_segment(ref.digest)


async def test_missing_object(replica):
    with pytest.raises(ObjectNotFound):
        await replica.fetch_object("ab" * 32, ObjectKind.SEGMENT)


async def test_publish_is_create_only_but_retry_safe(replica):
    first = record(0, [_snapshot_entry()], [])
    await replica.publish_record(first)
    await replica.publish_record(first)  # a retry of the same record is fine
    other = record(0, [_snapshot_entry()], [], writer="other:2:cafebabe")
    with pytest.raises(ReplicaConflict) as info:
        await replica.publish_record(other)
    assert f"index record 0 of generation {GENERATION}" in info.value.message
    assert "test:1:deadbeef" in info.value.message


def _snapshot_entry():
    from storage_builders import snapshot

    return snapshot(0, 100)


async def test_a_record_stored_under_another_key_is_corrupt(replica):
    await replica.publish_record(record(0, [_snapshot_entry()]))
    data, _ = await replica.store.get(index_record_key(GENERATION, 0), max_bytes=10**6)
    await replica.store.put(index_record_key(GENERATION, 1), bytes(data))
    with pytest.raises(CorruptObject, match="holds index record 0"):
        await replica.index.load_generation(GENERATION)


async def test_load_and_list_generations(replica):
    await replica.publish_record(record(0, [_snapshot_entry()], [segment(1, [110, 120])]))
    await replica.publish_record(record(1, [], [segment(3, [130])]))
    index = await replica.index.load_generation(GENERATION)
    assert (index.first_txid, index.last_txid, index.next_seq) == (0, 3, 2)
    [info] = await replica.index.list_generations()
    assert (info.generation, info.record_count, info.last_commit_time_us) == (GENERATION, 2, 130)
    with pytest.raises(ObjectNotFound):
        await replica.index.load_generation("0000000000000001")


async def test_compaction_covers_the_records_after_the_last_compacted_one(replica):
    await replica.publish_record(record(0, [_snapshot_entry()], [segment(1, [110])]))
    assert await replica.compact(GENERATION, min_records=2) == []
    await replica.publish_record(record(1, [], [segment(2, [120])]))
    await replica.publish_record(record(2, [], [segment(3, [130])]))
    assert await replica.compact(GENERATION, now_us=5) == [2]
    assert await replica.compact(GENERATION) == []
    index = await replica.index.load_generation(GENERATION)
    assert index.compacted_seq == 2 and len(index.records) == 1
    assert index.records[0].reason == "first run"
    assert index.last_txid == 3 and index.next_seq == 3
    await replica.publish_record(record(3, [], [segment(4, [140])]))
    index = await replica.index.load_generation(GENERATION)
    assert [r.seq for r in index.records] == [2, 3] and index.last_txid == 4
    # the next compaction joins record 3 to the compacted record 0..2
    assert await replica.compact(GENERATION, now_us=6) == [3]
    keys = (await replica.index.list_record_keys(GENERATION))[GENERATION]
    assert [(ref.first_seq, ref.seq) for ref in keys.view()] == [(0, 3)]
    assert any(
        ref.key.endswith("/compacted/0000000000000003-0000000000000000") for ref in keys.refs
    )
    index = await replica.index.load_generation(GENERATION)
    assert index.last_txid == 4 and [s.first_txid for s in index.segments] == [1, 2, 3, 4]


async def test_load_tip_counts_the_records_since_the_last_compaction(replica):
    # counted as compact() counts them: every record after the last compacted one
    await replica.publish_record(record(0, [_snapshot_entry()]))
    assert (await replica.index.load_tip(GENERATION)).records_since_compaction == 1
    for seq in range(1, 4):
        await replica.publish_record(record(seq, [], [segment(seq, [100 + seq])]))
    assert (await replica.index.load_tip(GENERATION)).records_since_compaction == 4
    assert await replica.compact(GENERATION, now_us=5) == [3]
    assert (await replica.index.load_tip(GENERATION)).records_since_compaction == 0
    await replica.publish_record(record(4, [], [segment(4, [104])]))
    assert (await replica.index.load_tip(GENERATION)).records_since_compaction == 1


async def test_load_tip_reads_back_only_as_far_as_the_latest_snapshot(replica):
    # records 0..3 compacted into 0..1 (the snapshot) and 2..3 (a continuation),
    # then index record 4: the tip needs compacted 2..3, record 4 and compacted 0..1.
    records = [
        record(0, [_snapshot_entry()]),
        *[record(seq, [], [segment(seq, [100 + seq])]) for seq in range(1, 5)],
    ]
    for item in records:
        await replica.publish_record(item)
    await replica.publish_record(
        record(1, [_snapshot_entry()], [segment(1, [101])], covers=(0, 1), reason="first run")
    )
    await replica.publish_record(
        record(3, [], [segment(2, [102]), segment(3, [103])], covers=(2, 3), reason="first run")
    )
    before = replica.stats.snapshot()["get"].requests
    tip = await replica.index.load_tip(GENERATION)
    assert (tip.last_txid, tip.next_seq, tip.snapshot_txid) == (4, 5, 0)
    assert replica.stats.snapshot()["get"].requests - before == 3
    assert tip.records_since_compaction == 1  # record 4, after the compacted 2..3
    index = await replica.index.load_generation(GENERATION)
    assert (index.last_txid, index.next_seq) == (tip.last_txid, tip.next_seq)
    with pytest.raises(ObjectNotFound):
        await replica.index.load_tip("0000000000000009")


async def test_put_snapshot_chunks_dedup_and_manifest(replica):
    page_size, chunk_size = 4096, 8192
    image = bytes(8192) + bytes(8192) + b"\x01" * 4096  # two identical chunks + a short one
    chunks = [image[i : i + chunk_size] for i in range(0, len(image), chunk_size)]
    entry = await replica.put_snapshot(
        chunks, txid=0, time_us=7, page_size=page_size, page_count=5, chunk_size=chunk_size
    )
    manifest = await replica.fetch_manifest(entry.manifest_digest)
    assert manifest.chunks[0] == manifest.chunks[1] != manifest.chunks[2]
    assert (manifest.txid, manifest.time_us, manifest.page_count) == (0, 7, 5)
    restored = b"".join(
        [bytes(await replica.fetch_object(d, ObjectKind.SNAPSHOT_CHUNK)) for d in manifest.chunks]
    )
    assert restored == image

    async def async_chunks():
        for chunk in chunks:
            await asyncio.sleep(0)
            yield chunk

    again = await replica.put_snapshot(
        async_chunks(),
        txid=0,
        time_us=7,
        page_size=page_size,
        page_count=5,
        chunk_size=chunk_size,
    )
    assert again == entry


@pytest.mark.parametrize(
    "chunks, match",
    [
        ([bytes(8192), bytes(8192)], "has 8192 bytes at offset 8192"),
        ([bytes(4096)], "has 4096 bytes at offset 0"),
        ([bytes(8192), bytes(4096), bytes(4096)], "has 4096 bytes at offset 12288"),
        ([bytes(8192)], "image has 8192 bytes, expected 12288"),
    ],
)
async def test_put_snapshot_checks_chunk_sizes(replica, chunks, match):
    with pytest.raises(ValueError, match=match):
        await replica.put_snapshot(
            chunks, txid=0, time_us=0, page_size=4096, page_count=3, chunk_size=8192
        )


@pytest.mark.parametrize("concurrency, expected", [(2, 2), (8, SNAPSHOT_CONCURRENCY)])
async def test_put_snapshot_holds_at_most_concurrency_chunks(replica, concurrency, expected):
    replica.concurrency = concurrency
    in_flight = peak = alive = peak_alive = 0
    upload = replica.put_object

    async def counting_upload(kind, payload):
        nonlocal in_flight, peak, alive
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.001)
            return await upload(kind, payload)
        finally:
            in_flight -= 1
            alive -= 1

    def chunks():
        # Counts chunks read and not yet uploaded: no chunk is read ahead of a slot.
        nonlocal alive, peak_alive
        for i in range(12):
            alive += 1
            peak_alive = max(peak_alive, alive)
            yield bytes([i]) * 4096

    replica.put_object = counting_upload
    entry = await replica.put_snapshot(
        chunks(), txid=0, time_us=0, page_size=4096, page_count=12, chunk_size=4096
    )
    assert entry.page_count == 12
    assert peak == expected and peak_alive == expected


async def test_listing_ignores_unknown_and_hostile_keys(replica):
    await replica.publish_record(record(0, [_snapshot_entry()]))
    for key in (
        f"generations/{GENERATION}/index/zzzzzzzzzzzzzzzz",
        f"generations/{GENERATION}/index/0000000000000001.tmp",
        "generations/NOTAGEN/index/0000000000000000",
        "generations/readme.txt",
        "objects/ab/cd",
    ):
        await replica.store.put(key, b"hostile")
    [info] = await replica.index.list_generations()
    assert info.record_count == 1


async def test_local_replica_round_trip(tmp_path):
    replica = Replica.open(str(tmp_path / "replica"))
    with pytest.raises(ObjectNotFound):
        await replica.ensure_format(create=False)
    assert not (tmp_path / "replica").exists()
    assert await replica.ensure_format(create=True) == 1
    ref = await replica.put_object(ObjectKind.SEGMENT, _segment_payload())
    assert (tmp_path / "replica" / "objects" / ref.digest[:2] / ref.digest).is_file()
    assert "replica" in repr(replica)
