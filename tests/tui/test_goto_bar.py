"""parse_goto: what the timeline's "go to" text names in a generation (no app running).

The generation is the fixed one of ``fixed_generations`` as read back from a
replica (segment summaries only): txids 40..71, a burst, a quiet minute, a
longer burst. The bar itself, in a running app, is tested in
``test_timeline_screen``.
"""

import pytest
from replica_builders import BASE_TIME_US, fixed_generations, summaries_only

from litetool.storage import GenerationIndex
from litetool.timespec import format_instant_us
from litetool.tui.display import format_time_us
from litetool.tui.goto_bar import parse_goto
from litetool.tui.messages import GotoNeedsSegment, GotoResolved
from litetool.tui.restore_points import RestorePoints


@pytest.fixture
def summarised() -> RestorePoints:
    generation, records = fixed_generations()[1]
    return RestorePoints(GenerationIndex.from_records(generation, summaries_only(records)))


def test_a_txid_with_or_without_hash(summarised):
    for text in ("#45", "45", "  #45 "):
        found = parse_goto(text, summarised)
        assert isinstance(found, GotoResolved)
        assert (found.generation, found.txid) == (summarised.generation, 45)


def test_a_txid_outside_the_generation_says_its_range(summarised):
    with pytest.raises(ValueError, match=r"^txid 72 is not in this generation \(40\.\.71\)$"):
        parse_goto("#72", summarised)
    with pytest.raises(ValueError):
        parse_goto("#forty", summarised)


def test_an_instant_known_from_the_summaries_lands_at_once(summarised):
    found = parse_goto(format_instant_us(BASE_TIME_US + 30_000_000), summarised)  # quiet minute
    assert isinstance(found, GotoResolved) and found.txid == 51


def test_an_instant_inside_a_segment_not_fetched_names_that_segment(summarised):
    instant_us = BASE_TIME_US + 1_000_000
    found = parse_goto(format_instant_us(instant_us), summarised)
    assert isinstance(found, GotoNeedsSegment)
    assert found.generation == summarised.generation
    assert found.time_us == instant_us and found.entry == summarised.segments[0]


def test_an_instant_before_the_first_commit_or_no_instant_is_an_error(summarised):
    early_us = BASE_TIME_US - 1_000_000
    with pytest.raises(ValueError) as refused:
        parse_goto(format_instant_us(early_us), summarised)
    assert str(refused.value) == (
        f"nothing committed at or before {format_time_us(early_us)} UTC in this generation "
        f"(first commit {format_time_us(BASE_TIME_US)})"
    )
    with pytest.raises(ValueError):
        parse_goto("yesterday-ish", summarised)
