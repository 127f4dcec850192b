"""Retention planning (FORMAT.md section 8): pure, no store."""

from dataclasses import replace

from storage_builders import record, segment, snapshot

from litetool.storage import GenerationIndex, new_generation_id, plan_retention

OLD = new_generation_id(1_000, 1)
MID = new_generation_id(2_000, 1)
NEW = new_generation_id(3_000, 1)


def _gen(generation, records):
    return GenerationIndex.from_records(
        generation, [replace(r, generation=generation) for r in records]
    )


def _simple(generation, start_us, snapshot_txids=(0,)):
    """Snapshot(s) plus one-transaction segments at start_us + 10*txid, txids 1..9."""
    snaps = [snapshot(t, start_us + 10 * t, label=f"{generation}s{t}") for t in snapshot_txids]
    segs = [segment(t, [start_us + 10 * t], label=f"{generation}g{t}") for t in range(1, 10)]
    return _gen(generation, [record(0, snaps, segs)])


def test_everything_inside_the_window_is_kept():
    plan = plan_retention([_simple(NEW, 1_000)], window_start_us=0)
    assert plan.keep_from == {NEW: 0} and plan.expired == ()


def test_latest_restore_point_is_always_kept():
    index = _simple(NEW, 1_000, snapshot_txids=(0, 5))
    plan = plan_retention([index], window_start_us=10**12)
    assert plan.keep_from == {NEW: 5}


def test_restore_point_in_force_at_window_start_is_kept():
    index = _simple(NEW, 1_000, snapshot_txids=(0, 3, 6))
    # window starts at 1_045: txid 4 (1_040) is in force; the snapshot before it is 3.
    assert plan_retention([index], window_start_us=1_045).keep_from == {NEW: 3}
    # exactly at a commit time: that txid is in force.
    assert plan_retention([index], window_start_us=1_060).keep_from == {NEW: 6}


def test_old_generations_expire_but_the_one_in_force_stays():
    old = _simple(OLD, 1_000)
    mid = _simple(MID, 2_000)
    new = _simple(NEW, 3_000)
    plan = plan_retention([new, old, mid], window_start_us=2_500)
    assert plan.expired == (OLD,)
    assert plan.keep_from == {MID: 0, NEW: 0}
    # Once the newest generation's first restore point is in force, older ones expire.
    plan = plan_retention([old, mid, new], window_start_us=3_005)
    assert plan.expired == (OLD, MID)
    assert plan.keep_from == {NEW: 0}


def test_snapshot_inside_a_segment_is_not_a_pruning_point():
    snaps = [snapshot(0, 0), snapshot(2, 20, label="mid")]
    index = _gen(NEW, [record(0, snaps, [segment(1, [10, 20, 30])])])
    assert plan_retention([index], window_start_us=25).keep_from == {NEW: 0}


def test_empty_replica():
    assert plan_retention([], 0).keep_from == {}
