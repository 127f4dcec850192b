"""The golden format-1 replica (tests/fixtures/replica-v1/) stays readable, value for value.

The fixture was written once by tests/fixtures/make_replica_v1.py and is never
regenerated: if this test fails, a change broke format 1 (see docs/FORMAT.md section 9).
Every expected value below is a literal, independent of today's encoder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import blake3
import pytest

from litetool.storage import LEASE_KEY, MARKER_KEY, ObjectKind, Replica
from litetool.storage.index import RecordRef

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "replica-v1"
GEN_A = "019ab8fa42000a0a"
GEN_B = "019ab992d8800b0b"
T0_A = 1_764_040_000_000_000
T0_B = 1_764_050_000_000_000


@pytest.fixture
def replica():
    return Replica.open(str(FIXTURE))


async def _image(replica, index, target_txid):
    """Restore *target_txid*: newest snapshot at or before it, then pages in order."""
    snapshot = index.snapshot_at_or_before(target_txid)
    manifest = await replica.fetch_manifest(snapshot.manifest_digest)
    image = bytearray()
    for digest in manifest.chunks:
        image += await replica.fetch_object(digest, ObjectKind.SNAPSHOT_CHUNK)
    assert len(image) == manifest.page_count * manifest.page_size
    for entry in index.segments_between(snapshot.txid, target_txid):
        segment = await replica.fetch_segment(entry.digest)
        frame = 0
        for offset, frames in enumerate(segment.frame_counts):
            txid = segment.first_txid + offset
            for _ in range(frames):
                if txid > snapshot.txid:
                    end = segment.page_numbers[frame] * segment.page_size
                    if len(image) < end:
                        image.extend(bytes(end - len(image)))
                    image[end - segment.page_size : end] = segment.page(frame)
                frame += 1
            if snapshot.txid < txid:
                del image[segment.db_sizes_pages[offset] * segment.page_size :]
            if txid == target_txid:
                return bytes(image)
    return bytes(image)


async def test_marker_and_lease(replica):
    assert await replica.ensure_format(create=False) == 1
    assert (FIXTURE / MARKER_KEY).read_bytes() == b'{"format":"litetool-replica","version":1}'
    lease = await replica.read_lease()
    assert (lease.writer, lease.expires_us, lease.generation) == (
        "golden:1:00000000",
        T0_B + 30_000_002,
        GEN_B,
    )
    assert (FIXTURE / LEASE_KEY).is_file()


async def test_generations(replica):
    infos = await replica.index.list_generations()
    assert [
        (
            i.generation,
            i.created_ms,
            i.first_txid,
            i.last_txid,
            i.first_commit_time_us,
            i.last_commit_time_us,
            i.record_count,
            i.next_seq,
            i.stored_bytes,
            i.reason,
        )
        for i in infos
    ] == [
        (GEN_A, 1_764_040_000_000, 0, 6, T0_A, T0_A + 300_000, 4, 3, 1539, "first run"),
        (GEN_B, 1_764_050_000_000, 0, 2, T0_B, T0_B + 60_000, 1, 1, 417, "wal reset"),
    ]


async def test_generation_a_records(replica):
    index = await replica.index.load_generation(GEN_A)
    assert index.compacted_seq == 1
    assert [(r.seq, r.covers, r.created_us, r.writer) for r in index.records] == [
        (1, (0, 1), T0_A + 3, "golden:1:00000000"),
        (2, None, T0_A + 4, "golden:1:00000000"),
    ]
    assert [
        (s.txid, s.manifest_digest, s.time_us, s.page_count, s.stored_bytes)
        for s in index.snapshots
    ] == [
        (0, "6a1bb15f279d365d8ae54a652f7d4ccbd4fe88e406892da6c9999b0ccba0bc25", T0_A, 5, 441),
        (
            5,
            "56a9de37190320c29bce793337a44482d6340973abf8906bcc8563999e4b5eb1",
            T0_A + 201_000,
            7,
            659,
        ),
    ]
    assert [
        (s.first_txid, s.last_txid, s.digest, s.stored_bytes, s.frames) for s in index.segments
    ] == [
        (1, 2, "d161587d8e048a22dcd8d23ae2b7181a24b62c81556003b813503da90c24f634", 148, 3),
        (3, 5, "9d7cd863320e09af50c1516b3ccc8b719c398f68a210a6dfdd90bf23d9978331", 177, 5),
        (6, 6, "6188c6d18c75598bc13114b63b1bfe7c5d68a3587cc1142cf8abc37d8dae1280", 114, 1),
    ]
    assert [index.commit_time_us(t) for t in range(7)] == [
        T0_A,
        T0_A + 100_000,
        T0_A + 105_000,
        T0_A + 200_000,
        T0_A + 200_500,
        T0_A + 201_000,
        T0_A + 300_000,
    ]
    assert [index.db_size_pages(t) for t in range(7)] == [5, 5, 6, 6, 6, 7, 4]
    # the covered records are still there and still decode
    record0 = await replica.index.fetch_record(
        GEN_A, RecordRef(0, 0, False, f"generations/{GEN_A}/index/0000000000000000")
    )
    assert (record0.reason, record0.created_us, len(record0.segments)) == ("first run", T0_A + 1, 1)


async def test_segments_decode_exactly(replica):
    segment = await replica.fetch_segment(
        "9d7cd863320e09af50c1516b3ccc8b719c398f68a210a6dfdd90bf23d9978331"
    )
    assert (segment.page_size, segment.first_txid, segment.last_txid) == (512, 3, 5)
    assert list(segment.commit_times_us) == [T0_A + 200_000, T0_A + 200_500, T0_A + 201_000]
    assert list(segment.db_sizes_pages) == [6, 6, 7]
    assert list(segment.frame_counts) == [2, 1, 2]
    assert list(segment.page_numbers) == [1, 3, 1, 7, 2]
    assert bytes(segment.page(2))[:16] == b"page 1 version 4"


async def test_snapshot_chunks_are_deduplicated(replica):
    manifest = await replica.fetch_manifest(
        "6a1bb15f279d365d8ae54a652f7d4ccbd4fe88e406892da6c9999b0ccba0bc25"
    )
    assert (manifest.txid, manifest.page_size, manifest.page_count, manifest.chunk_size) == (
        0,
        512,
        5,
        1024,
    )
    assert manifest.chunks[0] == manifest.chunks[1] != manifest.chunks[2]
    assert bytes(await replica.fetch_object(manifest.chunks[0], ObjectKind.SNAPSHOT_CHUNK)) == (
        bytes(1024)
    )


@pytest.mark.parametrize(
    "generation, txid, size, digest",
    [
        (GEN_A, 0, 2560, "52084042b9ead65e89699840334993f06f90838023db357ff322f53ad518a7c9"),
        (GEN_A, 2, 3072, "109bc5b796138dba6a7114425377437e3e3cf7eca2b5758a708e0235a423e80c"),
        (GEN_A, 5, 3584, "de8f85906c1f5be134e5b6dbb0c4f11e9b368aab441fbb7a775e4260376289ef"),
        (GEN_A, 6, 2048, "17b3c67fa79c4a7ade1942264f6af88dcc27260817fb0bf0e12473fa38c0d098"),
        (GEN_B, 2, 1536, "6138acfded50291e282af58eb7c0179f8aa36f3a9de871d6ef4bf2a48cea6576"),
    ],
)
async def test_restored_images(replica, generation, txid, size, digest):
    index = await replica.index.load_generation(generation)
    image = await _image(replica, index, txid)
    assert len(image) == size
    assert blake3.blake3(image).hexdigest() == digest


async def test_restore_through_either_snapshot_agrees(replica):
    index = await replica.index.load_generation(GEN_A)
    snapshot5 = await _image(replica, index, 5)
    from_zero = index.segments_between(0, 5)
    assert [s.first_txid for s in from_zero] == [1, 3]
    image = bytearray()
    manifest = await replica.fetch_manifest(index.snapshots[0].manifest_digest)
    for digest in manifest.chunks:
        image += await replica.fetch_object(digest, ObjectKind.SNAPSHOT_CHUNK)
    for entry in from_zero:
        segment = await replica.fetch_segment(entry.digest)
        frame = 0
        for offset, frames in enumerate(segment.frame_counts):
            for _ in range(frames):
                end = segment.page_numbers[frame] * 512
                image.extend(bytes(max(0, end - len(image))))
                image[end - 512 : end] = segment.page(frame)
                frame += 1
            del image[segment.db_sizes_pages[offset] * 512 :]
    assert bytes(image) == snapshot5


async def test_garbage_collection_on_a_copy_keeps_every_restore_point(tmp_path):
    copy = tmp_path / "replica"
    shutil.copytree(FIXTURE, copy)
    replica = Replica.open(str(copy))
    ten_years = 10 * 366 * 24 * 3600
    report = await replica.collect_garbage(ten_years, 0, now_us=time.time_ns() // 1000 + 10**9)
    assert report.deleted_records == 2  # index records 0 and 1 of A, covered by compacted/1
    assert report.deleted_objects == 0 and report.ignored_keys == 1
    assert (copy / "README.txt").is_file()
    for generation, last in ((GEN_A, 6), (GEN_B, 2)):
        index = await replica.index.load_generation(generation)
        assert index.last_txid == last


async def test_a_format_2_writer_continues_and_compacts_a_format_1_generation(tmp_path):
    # An upgraded daemon appends a format-2 record to generation A, then compacts:
    # record 2 names a snapshot, so it opens a run of its own; records 2..3
    # become one format-2 compacted record after the format-1 one (0..1).
    from litetool.storage import IndexRecord, SegmentEntry, SegmentTransaction, encode_segment

    copy = tmp_path / "replica"
    shutil.copytree(FIXTURE, copy)
    replica = Replica.open(str(copy))
    payload = encode_segment(512, 7, [SegmentTransaction(T0_A + 400_000, 4, [2], b"\x07" * 512)])
    ref = await replica.put_object(ObjectKind.SEGMENT, payload)
    entry = SegmentEntry.create(ref.digest, 7, ref.stored_bytes, 512, 1, [T0_A + 400_000], [4])
    await replica.publish_record(IndexRecord(GEN_A, 3, T0_A + 5, "upgraded", (), (entry,)))
    before = await replica.index.load_generation(GEN_A)
    assert [r.record_format for r in before.records] == [1, 1, 2]
    assert await replica.compact(GEN_A, now_us=T0_A + 6) == [3]
    after = await replica.index.load_generation(GEN_A)
    assert [(r.first_seq, r.seq, r.record_format) for r in after.records] == [
        (0, 1, 1),
        (2, 3, 2),
    ]
    assert after.reason == "first run"
    assert after.segments == before.segments and after.snapshots == before.snapshots
    # the per-transaction values of the format-1 segments now come from the objects
    full = await replica.fetch_details(after)
    assert [full.commit_time_us(t) for t in range(8)] == [
        T0_A,
        T0_A + 100_000,
        T0_A + 105_000,
        T0_A + 200_000,
        T0_A + 200_500,
        T0_A + 201_000,
        T0_A + 300_000,
        T0_A + 400_000,
    ]
