"""Upkeep: the snapshot schedule, compaction every so many records, GC."""

from engine_builders import file_replica_health
from spool_builders import PAGE, T0, engine_view

from litetool.engine.sync import upkeep
from litetool.engine.sync.generation_start import ReplicaPosition
from litetool.engine.sync.upkeep import GC_INTERVAL_SECONDS, Upkeep
from litetool.storage.generation_writer import GenerationWriter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _upkeep(tmp_path, *, txid=5, snapshot_interval=60.0):
    events = []
    replica, health = await file_replica_health(
        tmp_path, lambda level, event, **f: events.append(event)
    )
    clock = Clock(1000.0)
    writer = GenerationWriter(replica, "test:1:engine")
    writer.start("first run")
    await writer.publish(
        snapshots=[
            await writer.put_snapshot(
                [bytes(PAGE)], txid=0, time_us=T0, page_size=PAGE, page_count=1
            )
        ]
    )
    position = ReplicaPosition(writer, "g", snapshot_time_us=int(clock() * 1e6))
    keeper = Upkeep(
        engine=engine_view(None, txid),
        health=health,
        snapshot_interval=snapshot_interval,
        retention=3600.0,
        gc_grace=60.0,
        clock=clock,
    )
    return keeper, position, clock, events


async def test_a_snapshot_is_due_after_the_interval_when_transactions_came(tmp_path):
    keeper, position, clock, _ = await _upkeep(tmp_path)
    assert keeper.seconds_to_next(position) == 60.0
    assert not keeper.snapshot_due(position, clock())
    clock.now += 60
    assert keeper.snapshot_due(position, clock())
    taken = []

    async def publish_snapshot():
        taken.append(clock())

    await keeper.run(position, publish_snapshot)
    assert taken == [clock.now]
    idle, position, clock, _ = await _upkeep(tmp_path / "idle", txid=0)
    clock.now += 60
    assert not idle.snapshot_due(position, clock())  # nothing new since the snapshot


async def test_without_a_snapshot_interval_only_gc_is_scheduled(tmp_path):
    keeper, position, clock, _ = await _upkeep(tmp_path, snapshot_interval=0.0)
    assert keeper.seconds_to_next(position) == GC_INTERVAL_SECONDS
    clock.now += 10 * GC_INTERVAL_SECONDS
    assert not keeper.snapshot_due(position, clock())
    assert keeper.seconds_to_next(position) == 0.05  # overdue: after the 50 ms floor


async def test_compaction_starts_every_so_many_records_and_gc_every_hour(tmp_path, monkeypatch):
    monkeypatch.setattr(upkeep, "COMPACT_EVERY_RECORDS", 1)
    keeper, position, clock, events = await _upkeep(tmp_path)
    position.records_since_compaction = 1

    async def no_snapshot():
        raise AssertionError("no snapshot is due")

    await keeper.run(position, no_snapshot)
    assert position.records_since_compaction == 0
    await keeper.stop()  # a compaction in flight is cancelled, or already done
    assert events == []
    clock.now += GC_INTERVAL_SECONDS
    monkeypatch.setattr(keeper, "snapshot_interval", 0.0)
    await keeper.run(position, no_snapshot)
    assert events == ["gc"] and keeper.last_gc == clock.now
