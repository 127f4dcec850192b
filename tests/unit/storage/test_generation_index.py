"""GenerationIndex: the view of a generation and its contiguity rules (FORMAT.md section 5)."""

import pytest
from storage_builders import GENERATION, record, segment, snapshot

from litetool.errors import ReplicaFormatError
from litetool.storage import GenerationIndex, GenerationInfo
from litetool.storage.generation import select_view


def _index(records):
    return GenerationIndex.from_records(GENERATION, records)


def _three_records():
    return [
        record(0, [snapshot(0, 100, page_count=2)], [segment(1, [110, 120])]),
        record(1, [], [segment(3, [130])]),
        record(2, [snapshot(3, 135)], [segment(4, [140, 150, 160])]),
    ]


def test_restore_points_and_their_times():
    index = _index(_three_records())
    assert (index.first_txid, index.last_txid) == (0, 6)
    assert (index.first_commit_time_us, index.last_commit_time_us) == (100, 160)
    assert [index.commit_time_us(t) for t in range(7)] == [100, 110, 120, 130, 140, 150, 160]
    assert index.db_size_pages(0) == 2 and index.db_size_pages(5) == 3
    assert index.next_seq == 3 and index.last_seq == 2
    assert index.compacted_seq is None
    assert index.reason == "first run"
    assert index.page_size == 4096
    assert index.created_ms == 1_764_040_000_000
    assert index.stored_bytes == 200 + 20 + 10 + 30
    assert 6 in index and 7 not in index and -1 not in index
    with pytest.raises(ValueError):
        index.commit_time_us(7)


def test_snapshot_and_segment_selection_for_a_restore():
    index = _index(_three_records())
    assert index.snapshot_at_or_before(2).txid == 0
    assert index.snapshot_at_or_before(5).txid == 3
    assert [s.first_txid for s in index.segments_between(0, 6)] == [1, 3, 4]
    assert [s.first_txid for s in index.segments_between(3, 5)] == [4]
    assert [s.first_txid for s in index.segments_between(1, 2)] == [1]
    assert index.segments_between(4, 4) == []
    assert index.segment_for(5).first_txid == 4
    assert index.is_segment_boundary(3) and not index.is_segment_boundary(1)
    assert index.is_segment_boundary(0) and index.is_segment_boundary(6)
    assert len(index.object_digests()) == 5


def test_records_arrive_in_any_order():
    assert _index(list(reversed(_three_records()))).last_txid == 6


def test_compacted_record_replaces_the_records_it_covers():
    records = _three_records()
    compacted = record(
        1,
        [snapshot(0, 100, page_count=2)],
        [segment(1, [110, 120]), segment(3, [130])],
        covers=(0, 1),
        reason="first run",
    )
    index = _index([*records, compacted])
    assert index.compacted_seq == 1
    assert [r.seq for r in index.records] == [1, 2]
    assert index.last_txid == 6
    assert [r.seq for r in select_view([*records, compacted])] == [1, 2]


def test_newest_compacted_record_wins():
    old = record(0, [snapshot(0, 1)], covers=(0, 0))
    new = record(1, [snapshot(0, 1)], [segment(1, [2])], covers=(0, 1))
    index = _index([old, new, record(2, [], [segment(2, [3])])])
    assert index.compacted_seq == 1 and index.last_txid == 2


@pytest.mark.parametrize(
    "records, match",
    [
        ([], "no index records"),
        ([record(1, [snapshot(0, 1)])], "index record 0 is missing"),
        ([record(0, [snapshot(0, 1)]), record(2, [])], "index record 1 is missing"),
        ([record(0, [], [segment(1, [1])])], "without a snapshot"),
        ([record(0, [snapshot(0, 1)], [segment(2, [1])])], "expected txid 1"),
        (
            [record(0, [snapshot(0, 1)], [segment(1, [1])]), record(1, [], [segment(1, [2])])],
            "expected txid 2",
        ),
        ([record(0, [snapshot(0, 1), snapshot(5, 2)])], "beyond the last txid"),
        (
            [
                record(0, [snapshot(0, 1)], [segment(1, [1, 2])]),
                record(1, [snapshot(1, 2)]),
                record(2, [snapshot(0, 3)]),
            ],
            "out of order",
        ),
    ],
)
def test_broken_generations_are_rejected(records, match):
    with pytest.raises(ReplicaFormatError, match=match):
        _index(records)


def test_mixed_page_sizes_are_rejected():
    odd = segment(1, [1])
    object.__setattr__(odd, "page_size", 1024)
    with pytest.raises(ReplicaFormatError, match="page size"):
        _index([record(0, [snapshot(0, 1)], [odd])])


def test_records_of_another_generation_are_rejected():
    with pytest.raises(ReplicaFormatError, match="names generation"):
        _index([record(0, [snapshot(0, 1)], generation="0000000000000001")])


def test_generation_info_summary():
    info = GenerationInfo.from_index(_index(_three_records()), record_count=3)
    assert (info.first_txid, info.last_txid, info.record_count, info.next_seq) == (0, 6, 3, 3)
    assert (info.first_commit_time_us, info.last_commit_time_us) == (100, 160)


def test_compacted_record_of_a_view():
    index = _index(_three_records())
    whole = index.compacted_record(writer="c", created_us=9)
    assert (whole.seq, whole.covers, whole.reason) == (2, (0, 2), "first run")
    assert whole.segments == index.segments and whole.snapshots == index.snapshots
    pruned = index.compacted_record(writer="c", created_us=9, keep_from_txid=3)
    assert [s.txid for s in pruned.snapshots] == [3]
    assert [s.first_txid for s in pruned.segments] == [4]
    assert GenerationIndex.from_records(GENERATION, [pruned]).first_txid == 3
    with pytest.raises(ValueError):
        index.compacted_record(writer="c", created_us=9, keep_from_txid=2)  # no snapshot there
