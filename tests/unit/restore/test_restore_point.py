"""Choosing the restore point on hand-made index records: which replica, generation and
txid a target names, before any path is planned."""

from __future__ import annotations

from dataclasses import replace

import pytest
from restore_builders import index_of, segment_of, snapshot_at

from litetool.errors import NoBackupFound, TargetUnreachable
from litetool.restore.restore_point import (
    RestoreTarget,
    last_txid_at_or_before,
    max_time_us,
    pick_latest,
    pick_point,
)
from litetool.storage import DetailNeeded, new_generation_id

OLD = new_generation_id(1_764_040_000_000, 1)
NEW = new_generation_id(1_764_040_100_000, 2)
T0 = 1_764_040_000_000_000


def generation(generation_id=OLD, base=T0, times=(10, 20, 30), label=""):
    """txids 0..len(times): a snapshot at 0, one segment of the rest."""
    return index_of(
        generation_id,
        [snapshot_at(0, base, label=label)],
        [segment_of(1, [base + t for t in times], label=label)],
    )


def summarised(index):
    """*index* as its records alone describe it: no segment detail."""
    segments = [replace(segment, detail=None) for segment in index.segments]
    return index_of(index.generation, list(index.snapshots), segments)


def test_latest_is_the_latest_commit_then_the_newest_generation_then_the_first_replica():
    old, new = generation(OLD), generation(NEW, base=T0 - 1000, label="new")
    # The old generation holds the later commit: it wins over the newer one.
    assert pick_point([("r", new), ("r", old)], RestoreTarget()) == ("r", old, 3)
    same_time = generation(NEW, label="new")
    assert pick_point([("r", old), ("r", same_time)], RestoreTarget())[1] is same_time
    twin = generation(NEW, label="twin")
    assert pick_latest([("a", same_time), ("b", twin)])[0] == "a"


def test_txid_is_the_first_replica_that_holds_it_in_the_asked_generation():
    lagging = generation(OLD, times=(10,))
    full = generation(OLD, label="full")
    assert pick_point([("a", lagging), ("b", full)], RestoreTarget(txid=1))[0] == "a"
    assert pick_point([("a", lagging), ("b", full)], RestoreTarget(txid=3))[0] == "b"
    new = generation(NEW, base=T0 + 1000, times=(10,), label="new")
    candidates = [("a", full), ("b", new)]
    with pytest.raises(TargetUnreachable) as info:
        pick_point(candidates, RestoreTarget(txid=3))
    assert f"add --generation {OLD}" in info.value.hint
    assert pick_point(candidates, RestoreTarget(txid=3, generation=OLD)) == ("a", full, 3)


def test_time_lands_on_the_last_commit_at_or_before_it_by_running_maximum():
    index = generation(times=(10, 30, 20, 40))  # txid 3 says +20 but came after +30
    for offset, txid in [(0, 0), (15, 1), (25, 1), (30, 3), (39, 3), (40, 4), (999, 4)]:
        assert pick_point([("r", index)], RestoreTarget(time_us=T0 + offset))[2] == txid, offset
        assert last_txid_at_or_before(index, T0 + offset) == txid, offset
    assert last_txid_at_or_before(index, T0 - 1) is None
    with pytest.raises(TargetUnreachable) as info:
        pick_point([("r", index)], RestoreTarget(time_us=T0 - 1))
    assert "the earliest restore point is" in info.value.hint


def test_a_time_inside_a_segment_known_by_its_summary_needs_its_detail():
    index = summarised(generation(times=(10, 20, 30)))
    with pytest.raises(DetailNeeded) as info:
        pick_point([("r", index)], RestoreTarget(time_us=T0 + 15))
    assert info.value.entry == index.segments[0]
    # Before the segment's first commit or past its latest one, the summary settles it.
    assert pick_point([("r", index)], RestoreTarget(time_us=T0 + 5))[2] == 0
    assert pick_point([("r", index)], RestoreTarget(time_us=T0 + 30))[2] == 3


def test_max_time_us_is_the_latest_commit_even_when_the_clock_went_back():
    index = generation(times=(10, 50, 20))
    assert max_time_us(index) == T0 + 50
    assert max_time_us(summarised(index)) == T0 + 50  # the summary names it


def test_nothing_to_choose_from():
    with pytest.raises(NoBackupFound):
        pick_point([], RestoreTarget())
    generations = [
        ("r", generation(new_generation_id(1_764_040_000_000 + n, n), label=str(n)))
        for n in range(7)
    ]
    with pytest.raises(TargetUnreachable) as info:
        pick_point(generations, RestoreTarget(generation=NEW))
    assert info.value.message == f"generation {NEW} not found"
    assert info.value.hint.endswith(" and 2 older")
    assert generations[-1][1].generation in info.value.hint
