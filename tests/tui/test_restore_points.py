"""RestorePoints: the pure model behind the timeline (no textual)."""

import pytest
from replica_builders import BASE_TIME_US, fixed_generations

from litetool.storage import GenerationIndex
from litetool.tui.restore_points import RestorePoints


@pytest.fixture
def points() -> RestorePoints:
    generation, records = fixed_generations()[1]
    return RestorePoints(GenerationIndex.from_records(generation, records))


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
