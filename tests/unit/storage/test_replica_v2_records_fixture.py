"""The golden replica with index records of format 2 (tests/fixtures/replica-v2-records/)
stays readable, value for value.

The fixture was written once by tests/fixtures/make_replica_v2_records.py and is
never regenerated: if this test fails, a change broke index record format 2 (see
docs/FORMAT.md sections 5 and 9). Every expected value below is a literal,
independent of today's encoder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from litetool.restore import RestoreTarget, plan_fetching
from litetool.storage import DetailNeeded, ObjectKind, Replica
from litetool.storage.format.envelope import decode_object

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "replica-v2-records"
GEN = "019aba2b6f000c0c"
T0 = 1_764_060_000_000_000
MS = 1000


@pytest.fixture
def replica():
    return Replica.open(str(FIXTURE))


def test_a_compacted_record_is_exactly_these_bytes():
    key = f"generations/{GEN}/compacted/0000000000000004-0000000000000003"
    payload = decode_object(key, (FIXTURE / key).read_bytes(), ObjectKind.INDEX_RECORD, None)
    assert bytes(payload) == (
        b'{"format":2,"generation":"019aba2b6f000c0c","seq":4,"created_us":1764060000000010,'
        b'"writer":"golden:2:00000000","reason":"first run","snapshots":[{"manifest":'
        b'"7571b42e80ad6d5cf100fc6050b0fb1bb73e7d7bbab250614d6bce8bd3ba5fa6","txid":6,'
        b'"time_us":1764060000250000,"page_size":512,"page_count":2,"bytes":305}],'
        b'"segments":[{"object":"b3914a495874b90f6a2d701b169cd87e04fce37f9619d28bd31fab8436ac0b96",'
        b'"first_txid":7,"last_txid":7,"bytes":114,"page_size":512,"frames":1,'
        b'"first_time_us":1764060000300000,"last_time_us":1764060000300000,'
        b'"max_time_us":1764060000300000,"db_pages":3}],"covers":[3,4]}'
    )


async def test_the_view_walks_the_compacted_records_and_the_tail(replica):
    assert await replica.ensure_format(create=False) == 1
    keys = (await replica.index.list_record_keys(GEN))[GEN]
    assert len(keys) == 8
    assert [(ref.first_seq, ref.seq, ref.compacted) for ref in keys.view()] == [
        (0, 2, True),
        (3, 4, True),
        (5, 5, False),
    ]
    index = await replica.index.load_generation(GEN)
    assert (index.first_txid, index.last_txid, index.next_seq) == (0, 9, 6)
    assert index.reason == "first run"
    assert [s.txid for s in index.snapshots] == [0, 6]
    assert [(s.first_txid, s.last_txid, s.frames) for s in index.segments] == [
        (1, 3, 4),
        (4, 6, 3),
        (7, 7, 1),
        (8, 9, 3),
    ]
    assert [
        (s.first_time_us - T0, s.last_time_us - T0, s.max_time_us - T0, s.db_pages)
        for s in index.segments
    ] == [
        (100 * MS, 120 * MS, 120 * MS, 4),
        (200 * MS, 250 * MS, 260 * MS, 2),
        (300 * MS, 300 * MS, 300 * MS, 3),
        (400 * MS, 410 * MS, 410 * MS, 3),
    ]
    assert all(s.detail is None for s in index.segments)


async def test_per_transaction_values_come_from_the_segments(replica):
    index = await replica.index.load_generation(GEN)
    assert [index.commit_time_us(t) - T0 for t in (0, 1, 3, 4, 6, 7, 8, 9)] == [
        0,
        100 * MS,
        120 * MS,
        200 * MS,
        250 * MS,
        300 * MS,
        400 * MS,
        410 * MS,
    ]
    for txid in (2, 5):
        with pytest.raises(DetailNeeded):
            index.commit_time_us(txid)
    full = await replica.fetch_details(index)
    assert [full.commit_time_us(t) - T0 for t in range(1, 7)] == [
        100 * MS,
        90 * MS,
        120 * MS,
        200 * MS,
        260 * MS,
        250 * MS,
    ]
    assert [full.db_size_pages(t) for t in range(10)] == [3, 3, 4, 4, 4, 4, 2, 3, 3, 3]


@pytest.mark.parametrize(
    "time_us, txid",
    [
        (T0 - 1, None),
        (T0 + 95 * MS, 0),  # txid 1 is later; txid 2's earlier clock does not count
        (T0 + 100 * MS, 2),  # the running maximum stays at 100 ms through txid 2
        (T0 + 255 * MS, 4),  # txid 5 at 260 ms is past it, so txid 6 (250 ms) is too
        (T0 + 260 * MS, 6),
        (T0 + 405 * MS, 8),
        (T0 + 10**9, 9),
    ],
)
async def test_restore_at_an_instant_lands_on_the_right_transaction(replica, time_us, txid):
    from litetool.errors import TargetUnreachable
    from litetool.restore import load_candidates

    candidates = await load_candidates([replica])
    target = RestoreTarget(time_us=time_us)
    if txid is None:
        with pytest.raises(TargetUnreachable):
            await plan_fetching(candidates, target, [replica])
        return
    plan, _ = await plan_fetching(candidates, target, [replica])
    assert (plan.generation, plan.txid) == (GEN, txid)


async def test_a_resuming_writer_reads_only_the_end_of_the_view(replica):
    tip = await replica.index.load_tip(GEN)
    assert (tip.last_txid, tip.next_seq, tip.snapshot_txid) == (9, 6, 6)
    assert tip.snapshot_time_us == T0 + 250 * MS
    # the compacted record of records 0..2 was never read
    assert replica.stats.snapshot()["get"].requests == 2
