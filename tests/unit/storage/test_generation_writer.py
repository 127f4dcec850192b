"""GenerationWriter: seqs, record 0, contiguity, objects before records, the lease."""

import itertools
import time

import pytest

from litetool.errors import ReplicaConflict, ReplicaFormatError
from litetool.storage import (
    Replica,
    SegmentDetail,
    SegmentTransaction,
    encode_segment,
    index_record_key,
    parse_generation_time_ms,
    validate_generation,
)
from litetool.storage.generation_writer import GenerationWriter

PAGE = 512
T0 = 1_764_040_000_000_000


@pytest.fixture
def replica(tmp_path):
    return Replica.open((tmp_path / "replica").as_uri())


def _clock():
    return itertools.count(T0).__next__


async def _snapshot(writer, txid, pages=2):
    image = b"".join(bytes([txid % 256, n]) * (PAGE // 2) for n in range(pages))
    return await writer.put_snapshot(
        [image], txid=txid, time_us=T0 + txid, page_size=PAGE, page_count=pages
    )


async def _segment(writer, first_txid, count=2):
    transactions = [
        SegmentTransaction(T0 + first_txid + i, 2, [1 + i % 2], bytes([i]) * PAGE)
        for i in range(count)
    ]
    return await writer.put_segment(
        encode_segment(PAGE, first_txid, transactions),
        first_txid=first_txid,
        page_size=PAGE,
        frames=count,
        detail=SegmentDetail.create(
            [t.commit_time_us for t in transactions], [t.db_size_pages for t in transactions]
        ),
    )


async def _open(replica):
    await replica.ensure_format(create=True)
    return GenerationWriter(replica, "test:1:writer", now_us=_clock())


async def test_a_new_generation_gets_a_fresh_id_and_record_0_its_reason(replica):
    writer = await _open(replica)
    generation = writer.start("first run")
    assert writer.start("first run") != generation  # minted anew each time
    record = await writer.publish(snapshots=[await _snapshot(writer, 0)])
    assert (record.seq, record.reason, record.created_us) == (0, "first run", T0)
    record = await writer.publish(segments=[await _segment(writer, 1)])
    assert (record.seq, record.reason) == (1, None)
    index = await replica.index.load_generation(writer.generation)
    assert (index.reason, index.last_txid, index.next_seq) == ("first run", 2, 2)
    assert (writer.last_txid, writer.next_seq, writer.snapshot_txid) == (2, 2, 0)


async def test_generation_ids_are_minted_fresh_and_an_engines_own_is_kept(replica):
    before = time.time_ns() // 1_000_000
    minted = GenerationWriter.new_generation_id()  # what the engine's generations take
    validate_generation(minted)
    assert before <= parse_generation_time_ms(minted) <= time.time_ns() // 1_000_000
    writer = await _open(replica)
    assert writer.start("first run", minted) == minted == writer.generation


async def test_record_0_must_name_a_snapshot(replica):
    writer = await _open(replica)
    writer.start("first run")
    segment = await _segment(writer, 1)
    with pytest.raises(ReplicaFormatError, match="record 0 must name a snapshot"):
        await writer.publish(segments=[segment])
    assert await replica.index.list_record_keys() == {}


async def test_segments_must_continue_the_generation(replica):
    writer = await _open(replica)
    writer.start("first run")
    await writer.publish(snapshots=[await _snapshot(writer, 5)])
    gap = await _segment(writer, 7)
    with pytest.raises(ReplicaFormatError, match="not contiguous: expected txid 6"):
        await writer.publish(segments=[gap])
    first, second = await _segment(writer, 6), await _segment(writer, 8)
    await writer.publish(segments=[first, second])
    assert writer.last_txid == 9
    with pytest.raises(ReplicaFormatError, match="not contiguous: expected txid 10"):
        await writer.publish(segments=[await _segment(writer, 9)])


async def test_a_snapshot_never_goes_back_nor_beyond_the_last_txid(replica):
    writer = await _open(replica)
    writer.start("first run")
    await writer.publish(snapshots=[await _snapshot(writer, 3)])
    await writer.publish(segments=[await _segment(writer, 4)])  # txids 4, 5
    with pytest.raises(ReplicaFormatError, match="snapshot at txid 2 is out of order"):
        await writer.publish(snapshots=[await _snapshot(writer, 2)])
    with pytest.raises(ReplicaFormatError, match="beyond the last txid 5"):
        await writer.publish(snapshots=[await _snapshot(writer, 6)])
    # A snapshot inside the record's own segments is fine (published after them).
    segment = await _segment(writer, 6)  # txids 6, 7
    await writer.publish(segments=[segment], snapshots=[await _snapshot(writer, 7)])
    assert (writer.last_txid, writer.snapshot_txid) == (7, 7)
    assert (await replica.index.load_generation(writer.generation)).last_txid == 7


async def test_a_record_names_only_objects_this_writer_stored(replica):
    writer = await _open(replica)
    other = GenerationWriter(replica, "test:1:other")
    writer.start("first run")
    foreign = await _snapshot(other, 0)
    with pytest.raises(ReplicaFormatError, match="has not stored"):
        await writer.publish(snapshots=[foreign])
    await writer.publish(snapshots=[await _snapshot(writer, 0)])
    # Stored for the generation before: a new one starts from objects of its own.
    snapshot = await _snapshot(writer, 0)
    writer.start("a generation of its own")
    with pytest.raises(ReplicaFormatError, match="has not stored"):
        await writer.publish(snapshots=[snapshot])


async def test_resuming_continues_seq_and_txid_from_the_tip(replica):
    writer = await _open(replica)
    generation = writer.start("first run")
    await writer.publish(snapshots=[await _snapshot(writer, 0)])
    await writer.publish(segments=[await _segment(writer, 1)])
    later = GenerationWriter(replica, "test:2:writer")
    later.resume(await later.load_tip(generation))
    assert (later.generation, later.next_seq, later.last_txid, later.reason) == (
        generation,
        2,
        2,
        None,
    )
    record = await later.publish(segments=[await _segment(later, 3)])
    assert record.seq == 2
    # The first writer's next record now exists: a conflict, never a second seq 2.
    with pytest.raises(ReplicaConflict):
        await writer.publish(segments=[await _segment(writer, 3)])
    assert await replica.store.head(index_record_key(generation, 2))


async def test_the_lease_is_taken_once_and_released(replica):
    writer = await _open(replica)
    generation = writer.start("first run")
    lease = await writer.acquire_lease(60, generation)
    assert await writer.acquire_lease(60, generation) is lease  # held: not taken again
    rival = GenerationWriter(replica, "test:9:rival")
    with pytest.raises(ReplicaConflict):
        await rival.acquire_lease(60, generation)
    await writer.release_lease()
    assert writer.lease is None
    assert await replica.read_lease() is None
    await rival.acquire_lease(60, generation)


async def test_a_lease_past_half_its_life_is_renewed_before_the_record(replica):
    writer = await _open(replica)
    generation = writer.start("first run")
    lease = await writer.acquire_lease(0.001, generation)  # past half its life at once
    await writer.publish(snapshots=[await _snapshot(writer, 0)])
    assert writer.lease is not None and writer.lease.expires_us > lease.expires_us
    document = await replica.read_lease()
    assert document is not None and document.expires_us == writer.lease.expires_us
