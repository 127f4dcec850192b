"""Properties of the restore planner over random replicas, generations and targets.

Each generation has one true history (txids, commit times, db sizes); each replica
holds a prefix of it (a lagging replica) cut into its own segments, with its own
snapshots and stored sizes. Checked against brute force:

- the plan covers the target with no gap: the snapshot, then contiguous
  segments from snapshot.txid + 1 through the segment holding the target;
- it never applies a transaction after the target;
- its snapshot is the cheapest way to the target (fewest stored bytes);
- ``--at T`` lands on the last transaction committed at or before T, in the
  generation the rules choose; latest and ``--txid`` land where they should;
- with objects to avoid, ``fallback_point`` is the latest point whose ordinary
  plan avoids them, and ``latest_reachable`` the latest point that any plan
  reaches without them (what a restore that falls back can still reach), by
  the cheapest such plan.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from litetool.errors import TargetUnreachable
from litetool.restore.plan import (
    attach_detail,
    fallback_point,
    latest_reachable,
    plan_restore,
)
from litetool.restore.restore_point import RestoreTarget
from litetool.storage import (
    DetailNeeded,
    GenerationIndex,
    IndexRecord,
    SegmentEntry,
    SnapshotEntry,
    decode_record,
    encode_record,
    new_generation_id,
)

PAGE_SIZE = 4096
BASE_MS = 1_764_040_000_000


def digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


@st.composite
def histories(draw, generation_count):
    """Per generation: (id, first_txid, times by txid, db pages by txid)."""
    result = []
    clock = BASE_MS * 1000
    for number in range(generation_count):
        generation = new_generation_id(BASE_MS + number, number)
        clock += draw(st.integers(-5, 40))  # generations may overlap in time, rarely
        first_txid = draw(st.integers(0, 3))
        length = draw(st.integers(0, 14))
        times, pages = {}, {}
        for txid in range(first_txid, first_txid + length + 1):
            clock += draw(st.sampled_from([0, 1, 2, 5]))
            times[txid] = clock
            pages[txid] = draw(st.integers(1, 50))
        result.append((generation, first_txid, times, pages))
    return result


@st.composite
def replica_view(draw, name, history):
    generation, first_txid, times, pages = history
    last_txid = draw(st.integers(first_txid, max(times)))  # a replica may lag
    snapshot_txids = sorted(
        {first_txid, *draw(st.lists(st.integers(first_txid, last_txid), max_size=4))}
    )
    snapshots = tuple(
        SnapshotEntry(
            manifest_digest=digest(f"{name}/{generation}/snapshot/{txid}"),
            txid=txid,
            time_us=times[txid],
            page_size=PAGE_SIZE,
            page_count=pages[txid],
            stored_bytes=draw(st.integers(1, 2000)),
        )
        for txid in snapshot_txids
    )
    segments = []
    txid = first_txid + 1
    while txid <= last_txid:
        length = min(draw(st.integers(1, 4)), last_txid - txid + 1)
        span = range(txid, txid + length)
        segments.append(
            SegmentEntry.create(
                digest=digest(f"{name}/{generation}/segment/{txid}"),
                first_txid=txid,
                stored_bytes=draw(st.integers(1, 400)),
                page_size=PAGE_SIZE,
                frames=length + draw(st.integers(0, 3)),
                times_us=[times[t] for t in span],
                db_pages=[pages[t] for t in span],
            )
        )
        txid += length
    record = IndexRecord(
        generation=generation,
        seq=0,
        created_us=0,
        writer="test",
        snapshots=snapshots,
        segments=tuple(segments),
        reason="first run",
    )
    return name, GenerationIndex.from_records(generation, [record])


@st.composite
def candidate_sets(draw):
    histories_ = draw(histories(draw(st.integers(1, 3))))
    candidates = []
    for number in range(draw(st.integers(1, 3))):
        name = f"r{number}"
        held = draw(st.lists(st.sampled_from(histories_), min_size=1, unique_by=lambda h: h[0]))
        for history in sorted(held, key=lambda h: h[0]):
            candidates.append(draw(replica_view(name, history)))
    return candidates


# -- brute force ---------------------------------------------------------------------------


def running_times(index):
    """txid -> the running maximum of commit times (first point = snapshot time)."""
    result, running = {}, None
    for txid in range(index.first_txid, index.last_txid + 1):
        time_us = index.commit_time_us(txid)
        running = time_us if running is None else max(running, time_us)
        result[txid] = running
    return result


def needed_segments(index, snapshot, txid):
    """Segments holding any of the transactions snapshot.txid + 1 .. txid."""
    return (
        [
            segment
            for segment in index.segments
            if segment.first_txid <= txid and segment.last_txid > snapshot.txid
        ]
        if snapshot.txid < txid
        else []
    )


def path_cost(index, snapshot, txid):
    return snapshot.stored_bytes + sum(
        segment.stored_bytes for segment in needed_segments(index, snapshot, txid)
    )


def usable(index, snapshot, txid, broken):
    return snapshot.manifest_digest not in broken and not any(
        segment.digest in broken for segment in needed_segments(index, snapshot, txid)
    )


def check_plan_shape(plan, index, txid):
    assert (plan.generation, plan.txid) == (index.generation, txid)
    assert plan.snapshot in index.snapshots and plan.snapshot.txid <= txid
    expected_next = plan.snapshot.txid + 1
    for planned in plan.segments:
        entry = planned.entry
        assert entry in index.segments
        assert planned.first_txid == expected_next  # no gap
        assert entry.first_txid <= planned.first_txid <= planned.last_txid <= entry.last_txid
        assert planned.last_txid <= txid  # never after the target
        expected_next = planned.last_txid + 1
    assert expected_next == txid + 1  # through the target
    cheapest = min(path_cost(index, s, txid) for s in index.snapshots if s.txid <= txid)
    assert plan.fetch_bytes == path_cost(index, plan.snapshot, txid) == cheapest
    assert plan.commit_time_us == index.commit_time_us(txid)
    assert plan.db_size_pages == index.db_size_pages(txid)
    assert plan.object_count >= 2 + len(plan.segments)


def plan_in(name, index, txid):
    """The plan for *txid* within one candidate."""
    return plan_restore([(name, index)], RestoreTarget(txid=txid, generation=index.generation))


def summarised(index):
    """The same generation as a format-2 reader loads it: segments without detail."""
    records = [decode_record(encode_record(record)) for record in index.records]
    return GenerationIndex.from_records(index.generation, records)


def plan_from_summaries(candidates, target):
    """Plan over summaries, attaching each segment's detail when the planner asks
    (what ``restore.session.plan_fetching`` does with fetched segments)."""
    summaries = [(name, summarised(index)) for name, index in candidates]
    asked = []
    while True:
        try:
            return plan_restore(summaries, target), asked
        except DetailNeeded as need:
            asked.append(need.entry)
            detail = next(
                segment.detail
                for _, index in candidates
                if index.generation == need.generation
                for segment in index.segments
                if segment == need.entry
            )
            summaries = attach_detail(summaries, need.generation, need.entry, detail)


# -- properties ----------------------------------------------------------------------------


@given(candidate_sets(), st.data())
def test_plans_from_summaries_are_the_plans_from_full_detail(candidates, data):
    all_times = [t for _, index in candidates for t in running_times(index).values()]
    _, index = data.draw(st.sampled_from(candidates))
    target = data.draw(
        st.builds(RestoreTarget, time_us=st.integers(min(all_times) - 3, max(all_times) + 3))
        | st.builds(
            RestoreTarget,
            txid=st.integers(index.first_txid, index.last_txid),
            generation=st.just(index.generation),
        )
        | st.just(RestoreTarget())
    )
    try:
        expected = plan_restore(candidates, target)
    except TargetUnreachable:
        with pytest.raises(TargetUnreachable):
            plan_from_summaries(candidates, target)
        return
    plan, asked = plan_from_summaries(candidates, target)
    assert plan == expected
    assert len(asked) <= len(candidates)  # at most one segment per candidate
    if target.txid is None and target.time_us is None:
        assert asked == []  # the latest point is a segment boundary
    for entry in asked:
        assert entry.transaction_count > 1  # a one-transaction segment is all summary


@given(candidate_sets(), st.data())
def test_txid_plans_cover_the_target_cheapest_and_never_past_it(candidates, data):
    name, index = data.draw(st.sampled_from(candidates))
    txid = data.draw(st.integers(index.first_txid, index.last_txid))
    plan = plan_in(name, index, txid)
    check_plan_shape(plan, index, txid)
    target = RestoreTarget(txid=txid, generation=index.generation)
    chosen = plan_restore(candidates, target)
    first_holder = next(
        c for c in candidates if c[1].generation == index.generation and txid in c[1]
    )
    assert chosen.replica == first_holder[0]
    check_plan_shape(chosen, first_holder[1], txid)


@given(candidate_sets(), st.data())
def test_txid_without_generation_uses_the_latest_generation(candidates, data):
    latest = max(index.generation for _, index in candidates)
    txid = data.draw(st.integers(0, 25))
    holders = [c for c in candidates if c[1].generation == latest and txid in c[1]]
    if not holders:
        with pytest.raises(TargetUnreachable) as info:
            plan_restore(candidates, RestoreTarget(txid=txid))
        assert "--txid" in info.value.hint
        return
    plan = plan_restore(candidates, RestoreTarget(txid=txid))
    assert (plan.replica, plan.generation) == (holders[0][0], latest)
    check_plan_shape(plan, holders[0][1], txid)


@given(candidate_sets())
def test_latest_is_the_latest_restore_point(candidates):
    plan = plan_restore(candidates, RestoreTarget())
    best = max(
        (max(running_times(index).values()), index.generation, index.last_txid, -order)
        for order, (_, index) in enumerate(candidates)
    )
    name, index = candidates[-best[3]]
    assert (plan.replica, plan.generation, plan.txid) == (name, index.generation, index.last_txid)
    check_plan_shape(plan, index, index.last_txid)


@given(candidate_sets(), st.data())
def test_at_time_lands_on_the_last_commit_at_or_before_it(candidates, data):
    all_times = [t for _, index in candidates for t in running_times(index).values()]
    time_us = data.draw(st.integers(min(all_times) - 3, max(all_times) + 3))
    landings = []
    for order, (name, index) in enumerate(candidates):
        times = running_times(index)
        at_or_before = [txid for txid, t in times.items() if t <= time_us]
        if at_or_before:
            covers = time_us <= max(times.values())
            landing = max(at_or_before)
            key = (covers, 0 if covers else times[landing], index.generation, -order)
            landings.append((key, name, index, landing))
    if not landings:
        with pytest.raises(TargetUnreachable) as info:
            plan_restore(candidates, RestoreTarget(time_us=time_us))
        assert "use --at" in info.value.hint
        assert time_us < min(all_times)
        return
    _, name, index, landing = max(landings, key=lambda item: item[0])
    plan = plan_restore(candidates, RestoreTarget(time_us=time_us))
    assert (plan.replica, plan.generation, plan.txid) == (name, index.generation, landing)
    check_plan_shape(plan, index, landing)
    times = running_times(index)
    # The last commit at or before T: the next transaction (if any) is after T.
    assert times[landing] <= time_us
    assert landing == index.last_txid or times[landing + 1] > time_us


@given(candidate_sets(), st.data())
def test_at_time_within_one_generation(candidates, data):
    _, index = data.draw(st.sampled_from(candidates))
    times = running_times(index)
    time_us = data.draw(st.integers(min(times.values()), max(times.values()) + 2))
    plan = plan_restore(candidates, RestoreTarget(time_us=time_us, generation=index.generation))
    assert plan.generation == index.generation
    assert plan.commit_time_us <= time_us
    holder = next(
        index
        for name, index in candidates
        if name == plan.replica and index.generation == plan.generation
    )
    holder_times = running_times(holder)
    assert plan.txid == max(txid for txid, t in holder_times.items() if t <= time_us)


@given(candidate_sets(), st.data())
def test_fallback_point_is_the_latest_point_avoiding_broken_objects(candidates, data):
    name, index = data.draw(st.sampled_from(candidates))
    txid = data.draw(st.integers(index.first_txid, index.last_txid))
    names = [s.manifest_digest for s in index.snapshots] + [s.digest for s in index.segments]
    broken = set(data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    found = fallback_point(name, index, txid, broken)
    clean = [
        t for t in range(index.first_txid, txid + 1) if not plan_in(name, index, t).digests & broken
    ]
    if found is None:
        assert clean == []
    else:
        assert found.txid == max(clean)
        assert not found.digests & broken


@given(candidate_sets(), st.data())
def test_avoiding_objects_never_uses_them(candidates, data):
    name, index = data.draw(st.sampled_from(candidates))
    txid = data.draw(st.integers(index.first_txid, index.last_txid))
    names = [s.manifest_digest for s in index.snapshots] + [s.digest for s in index.segments]
    broken = set(data.draw(st.lists(st.sampled_from(names), max_size=2)))
    target = RestoreTarget(txid=txid, generation=index.generation)
    assume(
        candidates.index((name, index))
        == next(
            i
            for i, c in enumerate(candidates)
            if c[1].generation == index.generation and txid in c[1]
        )
    )
    usable_costs = [
        path_cost(index, snapshot, txid)
        for snapshot in index.snapshots
        if snapshot.txid <= txid and usable(index, snapshot, txid, broken)
    ]
    if not usable_costs:
        with pytest.raises(TargetUnreachable):
            plan_restore(candidates, target, avoid=broken)
        return
    plan = plan_restore(candidates, target, avoid=broken)
    assert not plan.digests & broken
    assert plan.fetch_bytes == min(usable_costs)


@given(candidate_sets(), st.data())
def test_latest_reachable_is_the_latest_point_any_plan_reaches_without_broken_objects(
    candidates, data
):
    """What a restore that falls back can still reach: brute force over every point."""
    name, index = data.draw(st.sampled_from(candidates))
    txid = data.draw(st.integers(index.first_txid, index.last_txid))
    names = [s.manifest_digest for s in index.snapshots] + [s.digest for s in index.segments]
    broken = set(data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    found = latest_reachable(name, index, txid, broken)
    reachable = [
        t
        for t in range(index.first_txid, txid + 1)
        if any(s.txid <= t and usable(index, s, t, broken) for s in index.snapshots)
    ]
    if found is None:
        assert reachable == []
        return
    assert found.txid == max(reachable)
    assert not found.digests & broken
    assert found.fetch_bytes == min(
        path_cost(index, s, found.txid)
        for s in index.snapshots
        if s.txid <= found.txid and usable(index, s, found.txid, broken)
    )
