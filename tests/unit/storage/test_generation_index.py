"""GenerationIndex: the view of a generation and its contiguity rules (FORMAT.md section 5)."""

import dataclasses

import pytest
from storage_builders import GENERATION, record, segment, snapshot

from litetool.errors import ReplicaFormatError
from litetool.storage import DetailNeeded, GenerationIndex, GenerationInfo, SegmentDetail
from litetool.storage.format.generation import plan_compaction, walk_view


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
    assert [r.seq for r in walk_view([*records, compacted])] == [1, 2]


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


def _summaries(records):
    """The same records as a format-2 reader sees them: segments without detail."""
    return [
        dataclasses.replace(
            r, segments=tuple(dataclasses.replace(e, detail=None) for e in r.segments)
        )
        for r in records
    ]


def test_summaries_answer_at_segment_boundaries_and_ask_for_the_rest():
    index = _index(_summaries(_three_records()))
    assert [index.commit_time_us(t) for t in (0, 1, 2, 3, 4, 6)] == [100, 110, 120, 130, 140, 160]
    assert index.db_size_pages(2) == 3 and index.db_size_pages(0) == 2
    with pytest.raises(DetailNeeded) as need:
        index.commit_time_us(5)
    assert (need.value.generation, need.value.entry.first_txid) == (GENERATION, 4)
    with pytest.raises(DetailNeeded):
        index.db_size_pages(4)
    detail = SegmentDetail.create([140, 150, 160], [3, 3, 3])
    detailed = index.with_detail(need.value.entry, detail)
    assert detailed.commit_time_us(5) == 150 and detailed.db_size_pages(4) == 3
    with pytest.raises(DetailNeeded):
        index.commit_time_us(5)  # the original is unchanged
    with pytest.raises(ValueError, match="disagrees"):
        index.with_detail(need.value.entry, SegmentDetail.create([140, 151, 161], [3] * 3))


def test_a_view_may_start_at_a_compacted_record_after_trimming():
    later = record(
        7,
        [snapshot(3, 135)],
        [segment(4, [140, 150, 160])],
        covers=(5, 7),
        reason="first run",
    )
    index = _index([later, record(8, [], [segment(7, [170])])])
    assert (index.first_txid, index.last_txid, index.next_seq) == (3, 7, 9)
    assert index.reason == "first run"
    with pytest.raises(ReplicaFormatError, match="index record 4 is missing"):
        _index([record(5, [snapshot(3, 135)], [segment(4, [140])])])


def test_the_walk_takes_the_widest_compacted_record_ending_where_it_stands():
    records = [
        record(0, [snapshot(0, 1)]),
        *[record(seq, [], [segment(seq, [seq])]) for seq in range(1, 6)],
        record(2, [snapshot(0, 1)], [segment(1, [1]), segment(2, [2])], covers=(0, 2)),
        record(2, [], [segment(2, [2])], covers=(2, 2)),
        record(4, [], [segment(3, [3]), segment(4, [4])], covers=(3, 4)),
    ]
    assert [(r.first_seq, r.seq) for r in walk_view(records)] == [(0, 2), (3, 4), (5, 5)]
    assert _index(records).last_txid == 5


def _run(first_seq, count, *, snapshot_at=None):
    """*count* index records from *first_seq*, one segment each (txid = seq)."""
    out = []
    for seq in range(first_seq, first_seq + count):
        snapshots = [snapshot(seq - 1, seq)] if seq == snapshot_at else []
        out.append(record(seq, snapshots, [segment(seq, [seq])]))
    return out


def test_compaction_splits_runs_at_snapshots_and_joins_a_small_predecessor():
    head = record(
        3,
        [snapshot(0, 1)],
        [segment(t, [t]) for t in range(1, 4)],
        covers=(0, 3),
        reason="first run",
    )
    tail = _run(4, 6, snapshot_at=7)  # records 4..9, record 7 names a snapshot at txid 6
    planned = plan_compaction([head, *tail], writer="c", created_us=9)
    assert [(r.first_seq, r.seq) for r in planned] == [(0, 6), (7, 9)]
    assert [r.reason for r in planned] == ["first run", "first run"]
    assert planned[1].snapshots[0].txid == 6 and planned[1].segments[0].first_txid == 7
    assert [s.first_txid for s in planned[0].segments] == [1, 2, 3, 4, 5, 6]
    whole = _index([*planned])
    assert (whole.first_txid, whole.last_txid) == (0, 9)


def test_compaction_starts_a_new_record_when_the_predecessor_is_full():
    head = record(3, [snapshot(0, 1)], [segment(t, [t]) for t in range(1, 4)], covers=(0, 3))
    planned = plan_compaction([head, *_run(4, 3)], writer="c", created_us=9, max_entries=6)
    assert [(r.first_seq, r.seq) for r in planned] == [(4, 6)]
    assert _index([head, *planned]).last_txid == 6


def test_compaction_refuses_records_that_do_not_follow_each_other():
    with pytest.raises(ValueError, match="do not follow"):
        plan_compaction([record(0, [snapshot(0, 1)]), *_run(2, 2)], writer="c", created_us=9)
