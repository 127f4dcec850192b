"""The restore points of one generation, laid out for the timeline screen.

Built once from a validated ``GenerationIndex`` (in a worker thread: a long
generation has millions of transactions), then queried by the screen: one
point, a window of consecutive points for the table, a histogram of commits
over time, a jump to the previous/next histogram bucket, and the latest point
at or before an instant (what ``litetool restore --at`` would pick). No
textual here; the screens turn these values into widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from litetool.storage import GenerationIndex


@dataclass(frozen=True, slots=True)
class RestorePoint:
    """A txid a restore can reach, its commit time and the database size after it."""

    generation: str
    txid: int
    time_us: int
    db_pages: int
    page_size: int
    segment_number: int | None  # 1-based position of its segment; None: the first snapshot
    segment_stored_bytes: int

    @property
    def db_size_bytes(self) -> int:
        return self.db_pages * self.page_size


class RestorePoints:
    """Every restore point of a generation, in txid order."""

    def __init__(self, index: GenerationIndex) -> None:
        self.generation = index.generation
        self.page_size = index.page_size
        self.first_txid = index.first_txid
        self.last_txid = index.last_txid
        self.snapshot_txids = tuple(snapshot.txid for snapshot in index.snapshots)
        first_snapshot = index.snapshots[0]
        times = [np.array([first_snapshot.time_us], dtype=np.int64)]
        pages = [np.array([first_snapshot.page_count], dtype=np.int64)]
        for segment in index.segments:
            times.append(np.frombuffer(segment.times_us, dtype=np.int64))
            pages.append(np.frombuffer(segment.db_pages, dtype=np.uint32).astype(np.int64))
        self.times_us: np.ndarray = np.concatenate(times)
        self.db_pages: np.ndarray = np.concatenate(pages)
        self._segment_starts = np.array(
            [segment.first_txid for segment in index.segments], dtype=np.int64
        )
        self._segment_bytes = [segment.stored_bytes for segment in index.segments]
        self.first_time_us = int(self.times_us.min())
        self.last_time_us = int(self.times_us.max())

    def __len__(self) -> int:
        return self.last_txid - self.first_txid + 1

    def __contains__(self, txid: object) -> bool:
        return isinstance(txid, int) and self.first_txid <= txid <= self.last_txid

    def clamp(self, txid: int) -> int:
        return min(max(txid, self.first_txid), self.last_txid)

    def point(self, txid: int) -> RestorePoint:
        if txid not in self:
            raise ValueError(f"txid {txid} is not a restore point of generation {self.generation}")
        position = txid - self.first_txid
        segment_number: int | None = None
        stored = 0
        if position:
            found = int(np.searchsorted(self._segment_starts, txid, side="right")) - 1
            segment_number = found + 1
            stored = self._segment_bytes[found]
        return RestorePoint(
            generation=self.generation,
            txid=txid,
            time_us=int(self.times_us[position]),
            db_pages=int(self.db_pages[position]),
            page_size=self.page_size,
            segment_number=segment_number,
            segment_stored_bytes=stored,
        )

    def window(self, around_txid: int, size: int) -> tuple[int, int]:
        """The first and last txid of at most *size* consecutive points centred on a txid."""
        size = max(1, size)
        if len(self) <= size:
            return self.first_txid, self.last_txid
        first = self.clamp(around_txid) - size // 2
        first = min(max(first, self.first_txid), self.last_txid - size + 1)
        return first, first + size - 1

    def points(self, first_txid: int, last_txid: int) -> list[RestorePoint]:
        return [self.point(txid) for txid in range(first_txid, last_txid + 1)]

    # -- time ------------------------------------------------------------------------------

    def at_or_before(self, time_us: int) -> int | None:
        """The latest txid committed at or before *time_us* (None: before the first)."""
        candidates = np.flatnonzero(self.times_us <= time_us)
        if not len(candidates):
            return None
        return self.first_txid + int(candidates[-1])

    # -- histogram -------------------------------------------------------------------------

    def _bucket_ids(self, buckets: int) -> np.ndarray:
        span = self.last_time_us - self.first_time_us
        if span <= 0 or buckets <= 1:
            return np.zeros(len(self.times_us), dtype=np.int64)
        ids = (self.times_us - self.first_time_us) * buckets // span
        return np.clip(ids, 0, buckets - 1)

    def histogram(self, buckets: int) -> list[int]:
        """Commits per bucket, *buckets* equal slices of [first time, last time]."""
        buckets = max(1, buckets)
        counts = np.bincount(self._bucket_ids(buckets), minlength=buckets)
        return [int(count) for count in counts[:buckets]]

    def bucket_of(self, txid: int, buckets: int) -> int:
        return int(self._bucket_ids(max(1, buckets))[self.clamp(txid) - self.first_txid])

    def bucket_bounds_us(self, bucket: int, buckets: int) -> tuple[int, int]:
        """The time slice [start, end) of a bucket."""
        span = self.last_time_us - self.first_time_us
        start = self.first_time_us + span * bucket // max(1, buckets)
        end = self.first_time_us + span * (bucket + 1) // max(1, buckets)
        return start, end

    def step_bucket(self, txid: int, direction: int, buckets: int) -> int:
        """The first txid of the next (``direction=1``) or previous (``-1``) bucket that
        has commits; from the last (first) bucket, the last (first) txid."""
        ids = self._bucket_ids(max(1, buckets))
        position = self.clamp(txid) - self.first_txid
        current = ids[position]
        if direction > 0:
            later = np.flatnonzero(ids[position + 1 :] > current)
            if not len(later):
                return self.last_txid
            return self.first_txid + position + 1 + int(later[0])
        earlier = np.flatnonzero(ids[:position] < current)
        if not len(earlier):
            return self.first_txid if position else txid
        target = ids[earlier[-1]]
        # back to the start of that bucket's run of commits
        run_end = int(earlier[-1])
        before = np.flatnonzero(ids[: run_end + 1] != target)
        start = int(before[-1]) + 1 if len(before) else 0
        return self.first_txid + start
