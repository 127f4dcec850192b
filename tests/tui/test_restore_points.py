"""RestorePoints: the pure model behind the timeline (no textual).

``points``: every segment's detail known (as from format-1 records, or after
fetching); ``summarised``: the same generation as read back from a replica
(format 2: segment summaries only).
"""

import pytest
from replica_builders import (
    BASE_TIME_US,
    fixed_generations,
    long_generation,
    long_generation_times,
    summaries_only,
)

from litetool.restore import last_txid_at_or_before
from litetool.storage import DetailNeeded, GenerationIndex, SegmentDetail, SegmentEntry
from litetool.tui.restore_points import RestorePoints


@pytest.fixture
def points() -> RestorePoints:
    generation, records = fixed_generations()[1]
    return RestorePoints(GenerationIndex.from_records(generation, records))


@pytest.fixture
def summarised() -> RestorePoints:
    generation, records = fixed_generations()[1]
    return RestorePoints(GenerationIndex.from_records(generation, summaries_only(records)))


def attach_all(target: RestorePoints, source: RestorePoints) -> None:
    for summary, known in zip(target.segments, source.segments, strict=True):
        assert known.detail is not None
        assert target.attach_detail(summary, known.detail)


def test_points_cover_the_generation_with_times_sizes_and_segments(points):
    assert (points.first_txid, points.last_txid, len(points)) == (40, 71, 32)
    first = points.point(40)
    assert first.segment_number is None and first.time_us == BASE_TIME_US
    assert first.db_size_bytes == 3 * 4096
    assert points.point(41).segment_number == 1
    assert points.point(51).segment_number == 1
    later = points.point(52)
    assert later.segment_number == 2 and later.db_pages == 6
    assert later.time_us == BASE_TIME_US + 60_000_000
    assert points.point(71).time_us == BASE_TIME_US + 60_000_000 + 19 * 100_000
    with pytest.raises(ValueError):
        points.point(72)


def test_window_is_centred_and_clamped(points):
    assert points.window(55, 100) == (40, 71)
    assert points.window(55, 10) == (50, 59)
    assert points.window(40, 10) == (40, 49)
    assert points.window(71, 10) == (62, 71)
    assert [p.txid for p in points.points(50, 52)] == [50, 51, 52]


def test_at_or_before_picks_the_latest_commit_not_after_the_instant(points):
    assert points.at_or_before(BASE_TIME_US - 1) is None
    assert points.at_or_before(BASE_TIME_US) == 40
    assert points.at_or_before(BASE_TIME_US + 30_000_000) == 51  # the quiet minute
    assert points.at_or_before(BASE_TIME_US + 60_000_000) == 52
    assert points.at_or_before(BASE_TIME_US + 10**12) == 71


def test_histogram_counts_every_commit_once(points):
    counts = points.histogram(10)
    assert sum(counts) == 32 and len(counts) == 10
    assert counts[0] == 12  # the first burst (3 s of 62 s)
    assert counts[-1] == 20  # the second burst
    assert counts[1:-1] == [0] * 8
    assert points.histogram(1) == [32]


def test_step_bucket_jumps_between_bursts(points):
    buckets = 10
    assert points.step_bucket(40, 1, buckets) == 52  # next non-empty bucket starts at 52
    assert points.step_bucket(52, 1, buckets) == 71  # in the last bucket: to the end
    assert points.step_bucket(71, 1, buckets) == 71
    assert points.step_bucket(71, -1, buckets) == 40  # back to the start of the first burst
    assert points.step_bucket(45, -1, buckets) == 40  # within the first bucket: to its start
    assert points.step_bucket(40, -1, buckets) == 40
    assert points.bucket_of(52, buckets) == 9


def test_a_generation_with_only_a_snapshot_has_one_point():
    generation, records = fixed_generations()[1]
    only = RestorePoints(GenerationIndex.from_records(generation, records[:1]))
    assert len(only) == 1 and only.histogram(5) == [1, 0, 0, 0, 0]
    assert only.step_bucket(40, 1, 5) == 40 and only.window(40, 10) == (40, 40)


# -- summaries only (format 2 as read back) ----------------------------------------------


def test_summaries_give_boundary_values_and_leave_the_rest_pending(summarised):
    assert (summarised.first_txid, summarised.last_txid, len(summarised)) == (40, 71, 32)
    first = summarised.point(40)  # the snapshot
    assert (first.time_us, first.db_pages, first.pending) == (BASE_TIME_US, 3, False)
    # a segment's first txid: its commit time, but not the size after it
    opening = summarised.point(41)
    assert opening.time_us == BASE_TIME_US + 250_000 and opening.db_pages is None
    assert opening.pending and opening.db_size_bytes is None
    # inside: neither; still its segment and stored bytes
    inside = summarised.point(45)
    assert (inside.time_us, inside.db_pages) == (None, None)
    assert (inside.segment_number, inside.segment_stored_bytes) == (1, 700 + 90 * 11)
    # a segment's last txid: both
    closing = summarised.point(51)
    assert (closing.time_us, closing.db_pages) == (BASE_TIME_US + 11 * 250_000, 5)
    assert not closing.pending
    assert summarised.point(71).time_us == BASE_TIME_US + 60_000_000 + 19 * 100_000


def test_missing_details_names_only_the_segments_a_range_needs(summarised):
    first, second = summarised.segments
    assert summarised.missing_details(40, 71) == [first, second]
    assert summarised.missing_details(40, 40) == []  # the snapshot
    assert summarised.missing_details(51, 51) == []  # a last txid is fully known
    assert summarised.missing_details(51, 52) == [second]  # 52's size is not
    assert summarised.missing_details(44, 46) == [first]
    assert summarised.missing_details(0, 10**9) == [first, second]  # clamped


def test_attaching_details_makes_points_exact(points, summarised):
    first, second = summarised.segments
    assert summarised.attach_detail(first, points.segments[0].detail)
    assert not summarised.attach_detail(first, points.segments[0].detail)  # already known
    assert summarised.missing_details(40, 71) == [second]
    assert summarised.points(40, 51) == points.points(40, 51)
    assert summarised.point(60).pending
    assert summarised.attach_detail(second, points.segments[1].detail)
    assert summarised.points(40, 71) == points.points(40, 71)
    assert summarised.missing_details(40, 71) == []


def test_a_detail_that_disagrees_or_a_foreign_segment_is_refused(summarised):
    first, second = summarised.segments
    with pytest.raises(ValueError, match="disagrees"):
        summarised.attach_detail(first, SegmentDetail.create([1, 2], [3, 3]))
    foreign = SegmentEntry.create("ab" * 32, 52, 10, 4096, 2, [BASE_TIME_US], [2])
    with pytest.raises(ValueError, match="not in generation"):
        summarised.attach_detail(foreign, foreign.detail)
    assert summarised.missing_details(40, 71) == [first, second]


def test_histogram_spreads_summarised_segments_and_is_exact_once_attached(points, summarised):
    # Each segment's transactions spread evenly over its first..last commit time: here
    # (evenly spaced commits) that is the exact picture at any resolution.
    assert summarised.first_time_us == points.first_time_us
    assert summarised.last_time_us == points.last_time_us
    for buckets in (1, 10, 37, 120):
        assert summarised.histogram(buckets) == points.histogram(buckets)
    assert summarised.step_bucket(40, 1, 10) == 52
    assert summarised.bucket_of(52, 10) == 9


def test_histogram_of_uneven_commits_is_approximate_then_exact():
    # The clock goes back inside every segment: spreading cannot know that, the detail can.
    generation, records, _ = long_generation(segments=4, per_segment=10)
    exact = RestorePoints(GenerationIndex.from_records(generation, records))
    summarised = RestorePoints(GenerationIndex.from_records(generation, summaries_only(records)))
    buckets = 80  # half a second each
    assert sum(summarised.histogram(buckets)) == len(summarised) == 41
    assert summarised.histogram(buckets) != exact.histogram(buckets)
    # the step/bucket queries agree with the picture they are drawn from
    for txid in range(summarised.first_txid, summarised.last_txid + 1):
        bucket = summarised.bucket_of(txid, buckets)
        assert summarised.histogram(buckets)[bucket] > 0
    attach_all(summarised, exact)
    assert summarised.histogram(buckets) == exact.histogram(buckets)
    assert all(
        summarised.step_bucket(txid, direction, buckets)
        == exact.step_bucket(txid, direction, buckets)
        for txid in range(41)
        for direction in (-1, 1)
    )


def test_at_or_before_answers_between_segments_and_names_the_segment_inside(points, summarised):
    assert summarised.at_or_before(BASE_TIME_US - 1) is None
    assert summarised.at_or_before(BASE_TIME_US) == 40
    assert summarised.at_or_before(BASE_TIME_US + 30_000_000) == 51  # the quiet minute
    assert summarised.at_or_before(BASE_TIME_US + 10**12) == 71
    with pytest.raises(DetailNeeded) as need:
        summarised.at_or_before(BASE_TIME_US + 1_000_000)
    assert need.value.entry == summarised.segments[0]
    summarised.attach_detail(need.value.entry, points.segments[0].detail)
    assert (
        summarised.at_or_before(BASE_TIME_US + 1_000_000)
        == points.at_or_before(BASE_TIME_US + 1_000_000)
        == 44
    )


def running_maximum_answer(times_us: list[int], time_us: int) -> int | None:
    """The restore --at rule spelled out: the last txid before the first whose commit
    time, as a running maximum, is later than *time_us* (txid 0: BASE_TIME_US)."""
    running, landing = BASE_TIME_US, None
    for txid, commit_time_us in enumerate([BASE_TIME_US, *times_us]):
        running = max(running, commit_time_us)
        if running > time_us:
            break
        landing = txid
    return landing


def test_at_or_before_is_the_planners_running_maximum_when_the_clock_went_back():
    generation, records, _ = long_generation(segments=3, per_segment=10)
    exact = RestorePoints(GenerationIndex.from_records(generation, records))
    times = long_generation_times(3, 10)
    # txid 3 committed at 1.5 s, after txid 2 at 2 s: at 1.7 s, restore --at lands on
    # txid 1 (txid 2 is later), not on txid 3 (whose own time is earlier)
    assert exact.at_or_before(BASE_TIME_US + 1_700_000) == 1
    for time_us in range(BASE_TIME_US - 500_000, BASE_TIME_US + 32_000_000, 100_000):
        expected = running_maximum_answer(times, time_us)
        assert exact.at_or_before(time_us) == expected
        assert last_txid_at_or_before(exact.index, time_us) == expected
        # from summaries: fetch (here: take) the one segment it names, then the same answer
        summarised = RestorePoints(
            GenerationIndex.from_records(generation, summaries_only(records))
        )
        try:
            found = summarised.at_or_before(time_us)
        except DetailNeeded as need:
            summarised.attach_detail(need.entry, exact.detail_of(need.entry))
            found = summarised.at_or_before(time_us)
        assert found == expected
