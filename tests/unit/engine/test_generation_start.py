"""Where a replica stands: resuming the engine's generation, or one of its own."""

import pytest
from spool_builders import T0, engine_view, make_spool

from litetool.engine.sync.generation_start import open_generation, reload_tip, resume_generation
from litetool.engine.sync.segment_build import SpoolGap
from litetool.errors import StorageUnavailable
from litetool.storage import Replica, SegmentDetail, SegmentTransaction, encode_segment
from litetool.storage.generation_writer import GenerationWriter

GENERATION = "019ab8fa42001234"


@pytest.fixture
def spool(tmp_path):
    spool = make_spool(tmp_path / "spool", 10)
    yield spool
    spool.close()


@pytest.fixture
def replica(tmp_path):
    return Replica.open((tmp_path / "replica").as_uri())


async def _publish_through(replica, last_txid: int) -> GenerationWriter:
    """The engine's generation on *replica*: a snapshot at 0, one segment to *last_txid*."""
    await replica.ensure_format(create=True)
    writer = GenerationWriter(replica, "test:0:before")
    writer.start("first run", GENERATION)
    entry = await writer.put_snapshot([bytes(512)], txid=0, time_us=T0, page_size=512, page_count=1)
    await writer.publish(snapshots=[entry])
    transactions = [SegmentTransaction(T0 + t, 1, [1], bytes(512)) for t in range(1, last_txid + 1)]
    segment = await writer.put_segment(
        encode_segment(512, 1, transactions),
        first_txid=1,
        page_size=512,
        frames=last_txid,
        detail=SegmentDetail.create([t.commit_time_us for t in transactions], [1] * last_txid),
    )
    await writer.publish(segments=[segment])
    return writer


def _logged():
    events = []
    return events, lambda level, event, **fields: events.append((level, event, fields))


async def test_a_replica_without_the_engines_generation_starts_it(replica, spool):
    events, log = _logged()
    writer = GenerationWriter(replica, "test:1:engine")
    engine = engine_view(spool, 10, generation=GENERATION, generation_reason="first run")
    position, new = await open_generation(
        writer, engine, name="m", detached=False, resume=True, detach_reason="", log=log
    )
    assert new and position.generation == GENERATION and position.txid == -1
    assert writer.reason == "first run" and writer.lease is not None
    assert events == []


async def test_a_replica_the_spool_continues_resumes(replica, spool):
    await _publish_through(replica, 6)
    writer = GenerationWriter(replica, "test:1:engine")
    position, why = await resume_generation(writer, engine_view(spool, 10), GENERATION)
    assert why == "" and position is not None
    assert (position.txid, position.snapshot_txid, writer.next_seq) == (6, 0, 2)
    assert position.records_since_compaction == 2


async def test_a_replica_ahead_of_the_spool_starts_a_generation_of_its_own(replica, spool):
    await _publish_through(replica, 8)
    events, log = _logged()
    writer = GenerationWriter(replica, "test:1:engine")
    position, new = await open_generation(
        writer, engine_view(spool, 7), name="m", detached=False, resume=True,
        detach_reason="", log=log,
    )  # fmt: skip
    assert new and position.generation != GENERATION
    assert position.engine_generation == GENERATION
    assert "has txid 8" in writer.reason and "up to 7" in writer.reason
    assert [event for _, event, _ in events] == ["replica cannot continue its generation"]


async def test_a_detached_replica_says_why_in_its_new_generation(replica, spool):
    _events, log = _logged()
    writer = GenerationWriter(replica, "test:1:engine")
    position, new = await open_generation(
        writer, engine_view(spool, 10), name="m", detached=True, resume=False,
        detach_reason="the spool no longer holds txid 3", log=log,
    )  # fmt: skip
    assert new and position.generation != GENERATION
    assert writer.reason == "the spool no longer holds txid 3"


async def test_reloading_the_tip_moves_to_what_the_replica_holds(replica, spool):
    await _publish_through(replica, 6)
    writer = GenerationWriter(replica, "test:1:engine")
    position, _ = await resume_generation(writer, engine_view(spool, 10), GENERATION)
    assert position is not None
    # Nothing newer listed yet: try again later.
    with pytest.raises(StorageUnavailable, match="does not show record 2"):
        await reload_tip(position, engine_view(spool, 10))
    other = GenerationWriter(replica, "test:1:engine")
    other.resume(await other.load_tip(GENERATION))
    transactions = [SegmentTransaction(T0 + 7, 1, [1], bytes(512))]
    segment = await other.put_segment(
        encode_segment(512, 7, transactions), first_txid=7, page_size=512, frames=1,
        detail=SegmentDetail.create([T0 + 7], [1]),
    )  # fmt: skip
    await other.publish(segments=[segment])
    with pytest.raises(SpoolGap, match="the replica has txid 7"):
        await reload_tip(position, engine_view(spool, 6))
    assert await reload_tip(position, engine_view(spool, 10)) == 7
    assert (position.txid, writer.next_seq) == (7, 3)
