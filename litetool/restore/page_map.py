"""The page map: which version of each page the restored file holds.

A restore writes every page once, whatever the length of the WAL history
(DESIGN.md section 7). Each page version has a number that grows with its
position in history: the snapshot's pages are version 1, and frame ``j`` of
the plan (counting the frames of every planned segment, in order) is version
``2 + j``. A version is written only when it is newer than the one already
written, so objects may be applied in any order and the file still ends with
the newest version of each page; applying segments newest first and the
snapshot last makes almost every page a single write.

Pages beyond the final database size are never written (the file is
truncated to that size anyway). The map is one integer per page of the final
database (4 bytes while versions fit in 31 bits): 0.1% of the database size.

Pure: page numbers in, write lists out. Not thread-safe: one writer applies
everything, so that checking and writing a page is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SNAPSHOT_VERSION = 1
FIRST_FRAME_VERSION = 2


@dataclass(frozen=True, slots=True)
class PageRun:
    """``count`` consecutive pages from ``first_page`` (1-based) to write."""

    first_page: int
    count: int


@dataclass(frozen=True, slots=True)
class FrameRun:
    """Consecutive pages from ``first_page``, taken from ``frames`` (frame indexes)."""

    first_page: int
    frames: Sequence[int]


class PageMap:
    """The version written so far of each page ``1..db_size_pages``."""

    def __init__(self, db_size_pages: int, frame_count: int) -> None:
        """*frame_count*: how many frames the plan's segments hold in total."""
        if db_size_pages < 1:
            raise ValueError("a database has at least one page")
        highest = FIRST_FRAME_VERSION + frame_count
        dtype = np.int32 if highest < 2**31 else np.int64
        self.db_size_pages = db_size_pages
        self._versions = np.zeros(db_size_pages + 1, dtype=dtype)
        #: Page writes handed out so far (a page overwritten by a newer version counts twice).
        self.page_writes = 0

    def apply_snapshot_pages(self, first_page: int, count: int) -> list[PageRun]:
        """Runs of the snapshot pages ``first_page ..+count`` to write: those no newer
        version was written for, clipped to the database size. Marks them written."""
        last = min(first_page + count - 1, self.db_size_pages)
        if last < first_page:
            return []
        window = self._versions[first_page : last + 1]
        free = window == 0
        if free.all():
            window[:] = SNAPSHOT_VERSION
            self.page_writes += len(window)
            return [PageRun(first_page, len(window))]
        runs = _runs(np.flatnonzero(free))
        window[free] = SNAPSHOT_VERSION
        self.page_writes += int(np.count_nonzero(free))
        return [PageRun(first_page + start, length) for start, length in runs]

    def apply_frames(
        self, page_numbers: Sequence[int] | np.ndarray, first_version: int
    ) -> list[FrameRun]:
        """Frames to write from consecutive frames with these *page_numbers*, the first of
        version *first_version*: for each page, its last frame, if newer than what was
        written and within the database size. Marks them written; sorted by page."""
        numbers = np.asarray(page_numbers, dtype=np.int64)
        if numbers.size == 0:
            return []
        # The last occurrence of each page: the first in reverse order.
        pages, reverse_index = np.unique(numbers[::-1], return_index=True)
        frames = numbers.size - 1 - reverse_index
        inside = pages <= self.db_size_pages
        pages, frames = pages[inside], frames[inside]
        versions = first_version + frames
        newer = versions > self._versions[pages]
        pages, frames, versions = pages[newer], frames[newer], versions[newer]
        self.page_writes += int(pages.size)
        self._versions[pages] = versions
        # Plain lists: numpy's split costs more than the writes for thousands of runs.
        page_list, frame_list = pages.tolist(), frames.tolist()
        return [
            FrameRun(page_list[start], frame_list[start : start + length])
            for start, length in _runs_of(pages)
        ]

    def written_pages(self) -> int:
        """Distinct pages written (the rest of the file are holes that read as zeros)."""
        return int(np.count_nonzero(self._versions[1:]))


def _runs_of(values: np.ndarray) -> list[tuple[int, int]]:
    """``(position, length)`` of each run of consecutive integers in sorted *values*."""
    if values.size == 0:
        return []
    breaks = (np.flatnonzero(np.diff(values) != 1) + 1).tolist()
    starts = [0, *breaks]
    ends = [*breaks, int(values.size)]
    return [(start, end - start) for start, end in zip(starts, ends, strict=True)]


def _runs(indexes: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of consecutive integers in sorted *indexes*."""
    return [(int(indexes[position]), length) for position, length in _runs_of(indexes)]
