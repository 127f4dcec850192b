"""The planner on hand-made index records: targets, paths, and the hints of its errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from restore_builders import index_of, segment_of, snapshot_at

from litetool.errors import CorruptObject, NoBackupFound, TargetUnreachable
from litetool.restore.plan import (
    BrokenGeneration,
    fallback_point,
    latest_reachable,
    plan_restore,
)
from litetool.restore.restore_point import RestoreTarget, last_txid_at_or_before
from litetool.restore.session import broken_object_hint
from litetool.storage import new_generation_id, object_key
from litetool.timespec import format_instant_us, parse_instant, to_us

OLD = new_generation_id(1_764_040_000_000, 1)
NEW = new_generation_id(1_764_040_100_000, 2)
T0 = 1_764_040_000_000_000


def simple(generation=OLD, base=T0, label=""):
    """txids 0..6: snapshot at 0 and at 4; segments 1-2, 3-5, 6."""
    return index_of(
        generation,
        [snapshot_at(0, base, label=label), snapshot_at(4, base + 40, label=label)],
        [
            segment_of(1, [base + 10, base + 20], label=label),
            segment_of(3, [base + 30, base + 40, base + 50], label=label),
            segment_of(6, [base + 60], label=label),
        ],
    )


def test_no_candidates():
    with pytest.raises(NoBackupFound):
        plan_restore([], RestoreTarget())


def test_a_target_is_a_time_or_a_txid():
    with pytest.raises(ValueError):
        RestoreTarget(time_us=1, txid=1)


def test_latest_and_a_mid_segment_snapshot():
    index = simple()
    plan = plan_restore([("r", index)], RestoreTarget())
    assert (plan.txid, plan.snapshot.txid) == (6, 4)
    # The snapshot at 4 sits inside segment 3-5: only 5 of it is applied.
    assert [(s.entry.first_txid, s.first_txid, s.last_txid) for s in plan.segments] == [
        (3, 5, 5),
        (6, 6, 6),
    ]
    assert plan.commit_time_us == T0 + 60
    assert plan.db_size_pages == 3
    assert plan.fetch_bytes == 100 + 10 + 10
    assert plan.object_count == 1 + 1 + 2


def test_the_last_segment_stops_at_the_target():
    plan = plan_restore([("r", simple())], RestoreTarget(txid=3))
    assert plan.snapshot.txid == 0
    assert [(s.first_txid, s.last_txid) for s in plan.segments] == [(1, 2), (3, 3)]
    assert plan.segments[-1].entry.last_txid == 5


def test_the_cheapest_snapshot_wins_over_the_latest():
    index = index_of(
        OLD,
        [snapshot_at(0, T0, stored_bytes=100), snapshot_at(2, T0 + 20, stored_bytes=10_000)],
        [segment_of(1, [T0 + 10, T0 + 20]), segment_of(3, [T0 + 30])],
    )
    plan = plan_restore([("r", index)], RestoreTarget(txid=3))
    assert plan.snapshot.txid == 0 and plan.fetch_bytes == 120


def test_at_lands_on_the_last_commit_at_or_before_the_time():
    index = simple()
    for offset, txid in [(0, 0), (9, 0), (10, 1), (29, 2), (30, 3), (55, 5), (999, 6)]:
        plan = plan_restore([("r", index)], RestoreTarget(time_us=T0 + offset))
        assert plan.txid == txid, offset


def test_at_before_the_earliest_point_names_it():
    with pytest.raises(TargetUnreachable) as info:
        plan_restore([("r", simple())], RestoreTarget(time_us=T0 - 1))
    earliest = format_instant_us(T0)
    assert f"use --at {earliest} or later" in info.value.hint
    assert to_us(parse_instant(earliest)) == T0  # the hint can be pasted back


def test_a_clock_step_back_never_includes_a_later_transaction():
    index = index_of(
        OLD, [snapshot_at(0, T0)], [segment_of(1, [T0 + 10, T0 + 20, T0 + 15, T0 + 30])]
    )
    # txid 3 says T0+15, but txid 2 (T0+20) came before it: at T0+17 only 0..1 happened.
    assert last_txid_at_or_before(index, T0 + 17) == 1
    assert last_txid_at_or_before(index, T0 + 20) == 3
    assert plan_restore([("r", index)], RestoreTarget(time_us=T0 + 17)).txid == 1


def test_at_across_generations():
    old = simple(OLD, T0)
    new = simple(NEW, T0 + 1000, label="new")
    candidates = [("r", old), ("r", new)]
    in_gap = plan_restore(candidates, RestoreTarget(time_us=T0 + 500))
    assert (in_gap.generation, in_gap.txid) == (OLD, 6)
    in_new = plan_restore(candidates, RestoreTarget(time_us=T0 + 1025))
    assert (in_new.generation, in_new.txid) == (NEW, 2)
    assert plan_restore(candidates, RestoreTarget()).generation == NEW


def test_overlapping_generations_prefer_the_most_recent_then_the_first_replica():
    old = simple(OLD, T0)
    new = simple(NEW, T0 + 25, label="new")  # covers T0+30 as well
    plan = plan_restore([("a", old), ("b", new)], RestoreTarget(time_us=T0 + 30))
    assert (plan.replica, plan.generation, plan.txid) == ("b", NEW, 0)
    twin = simple(NEW, T0 + 25, label="twin")
    plan = plan_restore([("a", old), ("b", new), ("c", twin)], RestoreTarget(time_us=T0 + 30))
    assert plan.replica == "b"


def test_txid_uses_the_latest_generation_and_hints_at_others():
    old = index_of(OLD, [snapshot_at(0, T0)], [segment_of(1, [T0 + i for i in range(1, 20)])])
    new = simple(NEW, T0 + 1000)
    with pytest.raises(TargetUnreachable) as info:
        plan_restore([("r", old), ("r", new)], RestoreTarget(txid=15))
    assert f"latest generation {NEW}" in info.value.message
    assert "latest: --txid 6" in info.value.hint
    assert f"add --generation {OLD}" in info.value.hint
    plan = plan_restore([("r", old), ("r", new)], RestoreTarget(txid=15, generation=OLD))
    assert (plan.generation, plan.txid) == (OLD, 15)


def test_txid_takes_the_first_replica_that_has_it():
    lagging = index_of(OLD, [snapshot_at(0, T0)], [segment_of(1, [T0 + 10])])
    full = simple(OLD, label="full")
    plan = plan_restore([("a", lagging), ("b", full)], RestoreTarget(txid=1))
    assert plan.replica == "a"
    plan = plan_restore([("a", lagging), ("b", full)], RestoreTarget(txid=5))
    assert plan.replica == "b"


def test_an_unknown_generation_lists_the_known_ones():
    with pytest.raises(TargetUnreachable) as info:
        plan_restore([("r", simple())], RestoreTarget(generation=NEW))
    assert OLD in info.value.hint


def test_avoiding_a_broken_snapshot_takes_an_older_path():
    index = simple()
    broken = {index.snapshots[1].manifest_digest}
    plan = plan_restore([("r", index)], RestoreTarget(txid=6), avoid=broken)
    assert plan.snapshot.txid == 0
    assert [(s.first_txid, s.last_txid) for s in plan.segments] == [(1, 2), (3, 5), (6, 6)]


def test_a_broken_last_segment_points_at_the_txid_before_it():
    index = simple()
    plan = plan_restore([("r", index)], RestoreTarget())
    broken = plan.segments[-1].digest
    assert fallback_point("r", index, 6, {broken}).txid == 5
    hint = broken_object_hint(plan, [("r", index)], object_key(broken))
    assert f"txid 5 of generation {OLD}" in hint
    assert f"--txid 5 --generation {OLD}" in hint
    with pytest.raises(TargetUnreachable) as info:
        plan_restore([("r", index)], RestoreTarget(), avoid={broken})
    assert "--txid 5" in info.value.hint


def test_a_broken_chunk_makes_its_snapshot_unusable():
    index = simple()
    plan = plan_restore([("r", index)], RestoreTarget())
    assert plan.snapshot.txid == 4
    chunk_key = object_key("ab" * 32)  # not named by the index: a chunk of the snapshot
    hint = broken_object_hint(plan, [("r", index)], chunk_key)
    assert "--txid 3 " in hint


def test_a_broken_first_snapshot_leaves_no_earlier_point():
    index = simple()
    plan = plan_restore([("r", index)], RestoreTarget(txid=2))
    hint = broken_object_hint(plan, [("r", index)], object_key(plan.snapshot.manifest_digest))
    assert "no earlier restore point" in hint


def test_a_hint_names_another_replica_with_the_same_point():
    index = simple()
    twin = simple(label="twin")
    plan = plan_restore([("a", index), ("b", twin)], RestoreTarget())
    hint = broken_object_hint(
        plan, [("a", index), ("b", twin)], object_key(plan.segments[-1].digest)
    )
    assert "--replica a" in hint and "try --replica b" in hint


# -- any path that avoids broken objects ----------------------------------------------------


def test_latest_reachable_takes_any_path_that_avoids_the_broken_objects():
    index = simple()
    # The snapshot at 4 is broken: 6 is still reached from 0 through every segment.
    assert latest_reachable("r", index, 6, {index.snapshots[1].manifest_digest}).txid == 6
    # Segment 3-5 broken: the snapshot at 4 still reaches 4 (no segment), and 5 and 6
    # need the segment from either snapshot.
    middle = index.segments[1].digest
    assert latest_reachable("r", index, 6, {middle}).txid == 4
    assert latest_reachable("r", index, 3, {middle}).txid == 2
    both = {middle, index.snapshots[1].manifest_digest}
    assert latest_reachable("r", index, 6, both).txid == 2
    assert latest_reachable("r", index, 6, {index.snapshots[0].manifest_digest, middle}).txid == 4
    assert latest_reachable("r", index, 6, {s.manifest_digest for s in index.snapshots}) is None


def test_latest_reachable_never_needs_a_segments_detail():
    # Segment 1-3 known by its summary only: 2 needs its detail, so 1 gives way to 0.
    index = index_of(
        OLD,
        [snapshot_at(0, T0), snapshot_at(2, T0 + 20)],
        [segment_of(1, [T0 + 10, T0 + 20, T0 + 30])],
    )
    summary_only = index_of(OLD, list(index.snapshots), [replace(index.segments[0], detail=None)])
    broken = {summary_only.segments[0].digest}
    assert latest_reachable("r", summary_only, 3, broken).txid == 0


# -- broken generations ----------------------------------------------------------------------


def _broken(generation, known, replica="r"):
    error = CorruptObject(f"generations/{generation}/index/0000000000000003", "payload digest")
    return BrokenGeneration(replica, generation, error.key, error, known)


def test_a_break_hides_the_latest_point_of_its_generation_and_newer_ones():
    old, new = simple(OLD), simple(NEW, base=T0 + 1000, label="new")
    candidates = [("r", old), ("r", new)]
    # The newest generation is broken after txid 6: its latest point is unknown.
    with pytest.raises(CorruptObject) as info:
        plan_restore(candidates, RestoreTarget(), breaks=[_broken(NEW, new)])
    assert info.value.key.endswith("/index/0000000000000003")
    assert f"the latest restore point known before it is txid 6 of generation {NEW}" in (
        info.value.hint
    )
    # A break in the older generation hides nothing newer.
    assert plan_restore(candidates, RestoreTarget(), breaks=[_broken(OLD, old)]).generation == NEW
    # A generation broken from its first record: the latest point known is the old one's.
    with pytest.raises(CorruptObject) as info:
        plan_restore([("r", old)], RestoreTarget(), breaks=[_broken(NEW, None)])
    assert f"txid 6 of generation {OLD}" in info.value.hint


def test_a_break_hides_txids_past_its_known_part_and_times_it_does_not_pass():
    old, new = simple(OLD), simple(NEW, base=T0 + 1000, label="new")
    known = index_of(NEW, list(new.snapshots), list(new.segments[:2]))  # txids 0..5
    candidates, breaks = [("r", old), ("r", known)], [_broken(NEW, known)]
    assert plan_restore(candidates, RestoreTarget(txid=5), breaks=breaks).txid == 5
    with pytest.raises(CorruptObject) as info:
        plan_restore(candidates, RestoreTarget(txid=6), breaks=breaks)
    assert f"txid 5 of generation {NEW}" in info.value.hint
    # --txid of the latest generation, when that generation is the broken one.
    assert plan_restore(candidates, RestoreTarget(txid=6, generation=OLD), breaks=breaks).txid == 6
    # A time the known part passes (txid 5 committed at +1050) lands inside it.
    assert plan_restore(candidates, RestoreTarget(time_us=T0 + 1045), breaks=breaks).txid == 4
    with pytest.raises(CorruptObject):
        plan_restore(candidates, RestoreTarget(time_us=T0 + 1050), breaks=breaks)
    # Before the broken generation began: the old one answers.
    assert plan_restore(candidates, RestoreTarget(time_us=T0 + 55), breaks=breaks).generation == OLD
    # Another replica holds the generation whole: the break does not matter.
    twin = ("s", simple(NEW, base=T0 + 1000, label="new"))
    assert plan_restore([*candidates, twin], RestoreTarget(), breaks=breaks).txid == 6
