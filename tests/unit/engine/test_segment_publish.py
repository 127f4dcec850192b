"""SegmentPublisher: staged and spooled segments, one record per sync."""

import pytest
from engine_builders import file_replica_health
from spool_builders import PAGE, T0, engine_view, make_spool

from litetool.engine.sync import segment_build, segment_publish
from litetool.engine.sync.generation_start import ReplicaPosition
from litetool.engine.sync.segment_publish import SegmentPublisher
from litetool.storage.generation_writer import GenerationWriter


@pytest.fixture
def spool(tmp_path):
    spool = make_spool(tmp_path / "spool", 12)
    yield spool
    spool.close()


async def _publisher(tmp_path, spool, **engine_fields):
    engine = engine_view(spool, 12, **engine_fields)
    events = []
    replica, health = await file_replica_health(
        tmp_path, lambda level, event, **f: events.append((event, f))
    )
    writer = GenerationWriter(replica, engine.writer_id)
    writer.start("first run")
    snapshot = await writer.put_snapshot(
        [bytes(3 * PAGE)], txid=0, time_us=T0, page_size=PAGE, page_count=3
    )
    await writer.publish(snapshots=[snapshot])
    position = ReplicaPosition(writer, engine.generation, 0)
    publisher = SegmentPublisher(engine=engine, writer=writer, health=health, clock=lambda: 1.0)
    return publisher, position, replica, events


async def test_a_sync_publishes_what_the_spool_holds_in_one_record(tmp_path, spool):
    publisher, position, replica, events = await _publisher(tmp_path, spool)
    assert await publisher.publish_pending(position)
    assert (position.txid, position.records_since_compaction) == (12, 1)
    assert not await publisher.publish_pending(position)  # nothing more
    index = await replica.index.load_generation(position.generation)
    assert (index.last_txid, len(index.records)) == (12, 2)
    assert [e for e, _ in events] == ["synced"]


async def test_through_txid_publishes_no_further(tmp_path, spool):
    publisher, position, _replica, _ = await _publisher(tmp_path, spool)
    assert await publisher.publish_pending(position, through_txid=5)
    assert position.txid == 5


async def test_staged_segments_are_named_by_the_next_sync(tmp_path, spool, monkeypatch):
    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", 3 * PAGE)
    publisher, position, replica, _ = await _publisher(tmp_path, spool)
    assert await publisher.stage(position)
    assert await publisher.stage(position)
    assert len(publisher.staged) == 2 and position.txid == 0  # stored, not published
    assert await publisher.publish_pending(position)
    assert position.txid == 12
    index = await replica.index.load_generation(position.generation)
    assert len(index.records) == 2 and len(index.segments) >= 3


async def test_under_backpressure_a_record_names_fewer_segments(tmp_path, spool, monkeypatch):
    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", PAGE)
    monkeypatch.setattr(segment_publish, "SEGMENTS_PER_RECORD_UNDER_PRESSURE", 2)
    publisher, position, replica, _ = await _publisher(tmp_path, spool, backpressure=True)
    assert await publisher.publish_pending(position)
    assert publisher.backlog  # the next sync goes on at once
    index = await replica.index.load_generation(position.generation)
    assert len(index.records[-1].segments) == 2


async def test_stale_staged_segments_are_dropped(tmp_path, spool, monkeypatch):
    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", 3 * PAGE)
    publisher, position, _replica, _ = await _publisher(tmp_path, spool)
    assert await publisher.stage(position)
    publisher.writer.start("a generation of its own")
    publisher.drop_stale(position)
    assert publisher.staged == []
