"""The page map: newest version of each page wins, whatever the order of application."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from litetool.restore.page_map import FIRST_FRAME_VERSION, SNAPSHOT_VERSION, PageMap


def test_snapshot_then_frames_overwrites_and_frames_then_snapshot_skips():
    first = PageMap(db_size_pages=8, frame_count=3)
    assert [(r.first_page, r.count) for r in first.apply_snapshot_pages(1, 8)] == [(1, 8)]
    runs = first.apply_frames([3, 4, 3], FIRST_FRAME_VERSION)
    assert [(r.first_page, list(r.frames)) for r in runs] == [(3, [2, 1])]
    assert first.page_writes == 10

    second = PageMap(db_size_pages=8, frame_count=3)
    second.apply_frames([3, 4, 3], FIRST_FRAME_VERSION)
    runs = second.apply_snapshot_pages(1, 8)
    assert [(r.first_page, r.count) for r in runs] == [(1, 2), (5, 4)]
    assert second.page_writes == second.written_pages() == 8


def test_pages_beyond_the_final_size_are_never_written():
    page_map = PageMap(db_size_pages=4, frame_count=3)
    assert [(r.first_page, r.count) for r in page_map.apply_snapshot_pages(3, 6)] == [(3, 2)]
    assert page_map.apply_snapshot_pages(5, 2) == []
    runs = page_map.apply_frames([9, 1, 7], FIRST_FRAME_VERSION)
    assert [(r.first_page, list(r.frames)) for r in runs] == [(1, [1])]


def test_an_older_segment_applied_late_writes_nothing():
    page_map = PageMap(db_size_pages=10, frame_count=4)
    assert page_map.apply_frames([5, 6], FIRST_FRAME_VERSION + 2)  # newer segment first
    assert page_map.apply_frames([5, 6], FIRST_FRAME_VERSION) == []
    assert page_map.page_writes == 2


@st.composite
def histories(draw):
    size = draw(st.integers(1, 40))
    snapshot_pages = draw(st.integers(1, 45))
    chunk_pages = draw(st.integers(1, 8))
    segments = draw(st.lists(st.lists(st.integers(1, 50), min_size=1, max_size=12), max_size=6))
    items = [("chunk", start) for start in range(1, snapshot_pages + 1, chunk_pages)]
    items += [("segment", index) for index in range(len(segments))]
    order = draw(st.permutations(items))
    return size, snapshot_pages, chunk_pages, segments, order


@given(histories())
def test_any_application_order_ends_with_the_newest_version_of_each_page(history):
    size, snapshot_pages, chunk_pages, segments, order = history
    frame_count = sum(len(segment) for segment in segments)
    bases = []
    version = FIRST_FRAME_VERSION
    for segment in segments:
        bases.append(version)
        version += len(segment)
    expected: dict[int, int] = {
        page: SNAPSHOT_VERSION for page in range(1, min(size, snapshot_pages) + 1)
    }
    for base, segment in zip(bases, segments, strict=True):
        for offset, page in enumerate(segment):
            if page <= size:
                expected[page] = base + offset

    page_map = PageMap(size, frame_count)
    file: dict[int, int] = {}
    for kind, key in order:
        if kind == "chunk":
            count = min(chunk_pages, snapshot_pages - key + 1)
            for run in page_map.apply_snapshot_pages(key, count):
                for page in range(run.first_page, run.first_page + run.count):
                    file[page] = SNAPSHOT_VERSION
        else:
            runs = page_map.apply_frames(segments[key], bases[key])
            for run in runs:
                assert list(run.frames) == sorted(run.frames, key=lambda f: segments[key][f])
                for position, frame in enumerate(run.frames):
                    assert segments[key][frame] == run.first_page + position
                    file[run.first_page + position] = bases[key] + frame
    assert file == expected
    assert page_map.written_pages() == len(expected)
    assert page_map.page_writes >= len(expected)


@given(histories())
def test_newest_first_order_writes_each_page_once(history):
    size, snapshot_pages, chunk_pages, segments, _ = history
    frame_count = sum(len(segment) for segment in segments)
    page_map = PageMap(size, frame_count)
    version = FIRST_FRAME_VERSION + frame_count
    for segment in reversed(segments):
        version -= len(segment)
        page_map.apply_frames(segment, version)
    for start in range(1, snapshot_pages + 1, chunk_pages):
        page_map.apply_snapshot_pages(start, min(chunk_pages, snapshot_pages - start + 1))
    assert page_map.page_writes == page_map.written_pages()
