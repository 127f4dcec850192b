"""The restore points of one generation, laid out for the timeline screen.

Built from a validated ``GenerationIndex`` (in a worker thread: a long
generation has millions of transactions), then queried by the screen: one
point, a window of consecutive points for the table, a histogram of commits
over time, a jump to the previous/next histogram bucket, and the last point
at or before an instant (what ``litetool restore --at`` would pick). No
textual and no I/O here; the screens turn these values into widgets and
fetch what is missing.

**What is known without fetching.** Index records summarise each segment
(docs/FORMAT.md section 5): the commit times of its first and last
transaction, its latest commit time, and the database size after its last
transaction. The commit time and size of every other transaction are in the
segment object. So a :class:`RestorePoint` inside a segment whose detail is
not attached has ``time_us`` and/or ``db_pages`` ``None`` (*pending*): never
an estimate. :meth:`RestorePoints.missing_details` names the segments a range
of txids needs; the timeline fetches them (``Replica.fetch_detail``) and
attaches them (:meth:`RestorePoints.attach_detail`), after which those points
are exact.

**The histogram is a density picture.** Every txid has a *placement* time:
its commit time when known, else a time spread evenly between its segment's
first and last commit times (``first_time_us`` at the first txid,
``last_time_us`` at the last, linear in between). ``histogram``,
``bucket_of`` and ``step_bucket`` all use placements, so they agree with each
other; they are exact for segments with detail and approximate (how many
commits fall in each time slice, not when any one of them happened) for the
others. The time axis runs from the earliest placement at build time to the
latest commit time the summaries name (``max_time_us``) and does not move
when details arrive (a commit time earlier than the axis counts in the first
bucket).

**Going to a time** delegates to
``litetool.restore.restore_point.last_txid_at_or_before``, the function
``restore --at`` uses (running-maximum semantics: a commit time that went
backwards counts as the latest time before it), so both land on the same
txid. When the answer lies inside a segment without detail it
raises ``DetailNeeded`` naming that segment.

Not thread-safe: build it in any thread, then use it (including
``attach_detail``) from one thread only (the screen's event loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from litetool.restore.restore_point import last_txid_at_or_before
from litetool.storage import DetailNeeded, GenerationIndex, SegmentDetail, SegmentEntry


@dataclass(frozen=True, slots=True)
class RestorePoint:
    """A txid a restore can reach, its commit time and the database size after it.

    ``time_us`` / ``db_pages`` are None while pending: the txid is inside a
    segment whose detail has not been fetched (its restore is still exact;
    only these two values are not known here yet).
    """

    generation: str
    txid: int
    time_us: int | None
    db_pages: int | None
    page_size: int
    segment_number: int | None  # 1-based position of its segment; None: the first snapshot
    segment_stored_bytes: int

    @property
    def db_size_bytes(self) -> int | None:
        return None if self.db_pages is None else self.db_pages * self.page_size

    @property
    def pending(self) -> bool:
        return self.time_us is None or self.db_pages is None


class RestorePoints:
    """Every restore point of a generation, in txid order (see the module docstring)."""

    def __init__(self, index: GenerationIndex) -> None:
        self.index = index  # as loaded; details attached later live in ``_details``
        self.generation = index.generation
        self.page_size = index.page_size
        self.first_txid = index.first_txid
        self.last_txid = index.last_txid
        self.snapshot_txids = tuple(snapshot.txid for snapshot in index.snapshots)
        self.segments: tuple[SegmentEntry, ...] = index.segments
        self._segment_starts = np.array(
            [segment.first_txid for segment in self.segments], dtype=np.int64
        )
        self._details: dict[int, SegmentDetail] = {
            position: segment.detail
            for position, segment in enumerate(self.segments)
            if segment.detail is not None
        }
        self._placement_us = self._place()
        first_snapshot = index.snapshots[0]
        self.first_time_us = int(self._placement_us.min())  # the histogram's axis
        self.last_time_us = max(
            [first_snapshot.time_us, *(segment.max_time_us for segment in self.segments)]
        )
        self._bucket_cache: tuple[tuple[int, int], np.ndarray] | None = None

    def _place(self) -> np.ndarray:
        """Placement time of every txid (module docstring), position ``txid - first_txid``."""
        placement = np.empty(len(self), dtype=np.int64)
        placement[0] = self.index.snapshots[0].time_us
        if not self.segments:
            return placement
        if len(self._details) == len(self.segments):  # format 1: every time is known
            placement[1:] = np.concatenate(
                [np.frombuffer(self._details[p].times_us, dtype=np.int64) for p in self._details]
            )
            return placement
        counts = np.array([s.transaction_count for s in self.segments], dtype=np.int64)
        first = np.array([s.first_time_us for s in self.segments], dtype=np.int64)
        last = np.array([s.last_time_us for s in self.segments], dtype=np.int64)
        starts = np.cumsum(counts) - counts
        offsets = np.arange(len(self) - 1, dtype=np.int64) - np.repeat(starts, counts)
        fraction = offsets / np.repeat(np.maximum(counts - 1, 1), counts)
        spread = np.repeat((last - first).astype(np.float64), counts) * fraction
        placement[1:] = np.repeat(first, counts) + np.rint(spread).astype(np.int64)
        for position, detail in self._details.items():
            self._place_exact(placement, position, detail)
        return placement

    def _place_exact(self, placement: np.ndarray, position: int, detail: SegmentDetail) -> None:
        start = self.segments[position].first_txid - self.first_txid
        placement[start : start + len(detail.times_us)] = np.frombuffer(
            detail.times_us, dtype=np.int64
        )

    def __len__(self) -> int:
        return self.last_txid - self.first_txid + 1

    def __contains__(self, txid: object) -> bool:
        return isinstance(txid, int) and self.first_txid <= txid <= self.last_txid

    def clamp(self, txid: int) -> int:
        return min(max(txid, self.first_txid), self.last_txid)

    # -- segments and their details --------------------------------------------------------

    def _position(self, txid: int) -> int:
        """Index in ``segments`` of the segment holding *txid* (-1: the first snapshot)."""
        return int(np.searchsorted(self._segment_starts, txid, side="right")) - 1

    def segment_for(self, txid: int) -> SegmentEntry | None:
        """The segment holding *txid*; None for the first restore point (the snapshot)."""
        if txid not in self:
            raise ValueError(f"txid {txid} is not a restore point of generation {self.generation}")
        position = self._position(txid)
        return self.segments[position] if position >= 0 else None

    def detail_of(self, entry: SegmentEntry) -> SegmentDetail | None:
        position = self._position(entry.first_txid)
        if position < 0 or self.segments[position].digest != entry.digest:
            return None
        return self._details.get(position)

    def missing_details(self, first_txid: int, last_txid: int) -> list[SegmentEntry]:
        """The segments without detail that points ``first_txid..last_txid`` need for their
        commit times and sizes, in txid order. Only a segment's last txid is fully known
        from its summary (its first has a time but no size), so a one-transaction segment
        never needs fetching."""
        first_txid, last_txid = self.clamp(first_txid), self.clamp(last_txid)
        if last_txid < first_txid or not self.segments:
            return []
        wanted = []
        for position in range(max(0, self._position(first_txid)), self._position(last_txid) + 1):
            segment = self.segments[position]
            if position in self._details or segment.first_txid == segment.last_txid:
                continue
            if first_txid < segment.last_txid and last_txid >= segment.first_txid:
                wanted.append(segment)
        return wanted

    def attach_detail(self, entry: SegmentEntry, detail: SegmentDetail) -> bool:
        """Make the points of segment *entry* exact. Returns False when it already was;
        ValueError when *entry* is not a segment of this generation or *detail*
        disagrees with its summary."""
        position = self._position(entry.first_txid)
        if position < 0 or self.segments[position] != entry:
            raise ValueError(
                f"segment {entry.digest[:12]} (txids {entry.first_txid}..{entry.last_txid}) "
                f"is not in generation {self.generation}"
            )
        if position in self._details:
            return False
        if not entry.matches(detail):
            raise ValueError(f"segment {entry.digest[:12]} disagrees with its index entry")
        self._details[position] = detail
        self._place_exact(self._placement_us, position, detail)
        self._bucket_cache = None
        return True

    # -- points ----------------------------------------------------------------------------

    def point(self, txid: int) -> RestorePoint:
        if txid not in self:
            raise ValueError(f"txid {txid} is not a restore point of generation {self.generation}")
        position = self._position(txid)
        if position < 0:
            snapshot = self.index.snapshots[0]
            return RestorePoint(
                generation=self.generation,
                txid=txid,
                time_us=snapshot.time_us,
                db_pages=snapshot.page_count,
                page_size=self.page_size,
                segment_number=None,
                segment_stored_bytes=0,
            )
        segment = self.segments[position]
        detail = self._details.get(position)
        time_us: int | None = None
        db_pages: int | None = None
        if detail is not None:
            time_us = detail.times_us[txid - segment.first_txid]
            db_pages = detail.db_pages[txid - segment.first_txid]
        elif txid == segment.last_txid:
            time_us, db_pages = segment.last_time_us, segment.db_pages
        elif txid == segment.first_txid:
            time_us = segment.first_time_us
        return RestorePoint(
            generation=self.generation,
            txid=txid,
            time_us=time_us,
            db_pages=db_pages,
            page_size=self.page_size,
            segment_number=position + 1,
            segment_stored_bytes=segment.stored_bytes,
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

    @property
    def first_commit_time_us(self) -> int:
        """Commit time of the first restore point (``restore --at`` earlier finds nothing)."""
        return self.index.first_commit_time_us

    def at_or_before(self, time_us: int) -> int | None:
        """The txid ``litetool restore --at`` lands on in this generation: the last one
        whose commit time, as a running maximum, is at or before *time_us* (None: before
        the first). ``DetailNeeded`` when that needs a segment not attached yet."""
        try:
            return last_txid_at_or_before(self.index, time_us)
        except DetailNeeded as need:
            # The planner needs at most one segment's detail (where the running maximum
            # passes the instant): attach it, if known, to a copy of the index.
            detail = self.detail_of(need.entry)
            if detail is None:
                raise
            return last_txid_at_or_before(self.index.with_detail(need.entry, detail), time_us)

    # -- histogram -------------------------------------------------------------------------
    #
    # Two ways to slice time into buckets (one per histogram column): ``unit_us=0``
    # cuts [first time, last time] into *buckets* equal slices (the whole generation);
    # a ``unit_us`` (a zoom level: a second, a minute, ...) makes bucket ``b`` the slice
    # [b * unit_us, (b + 1) * unit_us) of the epoch, so bucket numbers do not depend on
    # the window shown and the histogram shows *buckets* of them from ``first_bucket``.

    def _bucket_ids(self, buckets: int, unit_us: int = 0) -> np.ndarray:
        key = (0, unit_us) if unit_us else (max(1, buckets), 0)
        if self._bucket_cache is not None and self._bucket_cache[0] == key:
            return self._bucket_cache[1]
        span = self.last_time_us - self.first_time_us
        if unit_us:
            ids = self._placement_us // unit_us
        elif span <= 0 or buckets <= 1:
            ids = np.zeros(len(self), dtype=np.int64)
        else:
            offsets = self._placement_us - self.first_time_us
            if span < (1 << 62) // buckets:
                ids = offsets * buckets // span
            else:  # would overflow int64: a span of millennia, exactness is moot
                ids = np.floor(offsets.astype(np.float64) * buckets / span).astype(np.int64)
            ids = np.clip(ids, 0, buckets - 1)
        self._bucket_cache = (key, ids)
        return ids

    def histogram(self, buckets: int, unit_us: int = 0, first_bucket: int = 0) -> list[int]:
        """Commits per bucket: *buckets* equal slices of [first time, last time], or with
        *unit_us* the *buckets* slices of that length from bucket *first_bucket* on
        (placements: exact where the detail is known, see the module docstring)."""
        buckets = max(1, buckets)
        ids = self._bucket_ids(buckets, unit_us)
        if unit_us:
            ids = ids - first_bucket
            ids = ids[(ids >= 0) & (ids < buckets)]
        counts = np.bincount(ids, minlength=buckets)
        return [int(count) for count in counts[:buckets]]

    def bucket_of(self, txid: int, buckets: int, unit_us: int = 0) -> int:
        return int(self._bucket_ids(buckets, unit_us)[self.clamp(txid) - self.first_txid])

    def bucket_bounds_us(self, bucket: int, buckets: int, unit_us: int = 0) -> tuple[int, int]:
        """The time slice [start, end) of a bucket."""
        if unit_us:
            return bucket * unit_us, (bucket + 1) * unit_us
        span = self.last_time_us - self.first_time_us
        start = self.first_time_us + span * bucket // max(1, buckets)
        end = self.first_time_us + span * (bucket + 1) // max(1, buckets)
        return start, end

    def step_bucket(self, txid: int, direction: int, buckets: int, unit_us: int = 0) -> int:
        """The first txid of the next (``direction=1``) or previous (``-1``) bucket that
        has commits; from the last (first) bucket, the last (first) txid."""
        ids = self._bucket_ids(buckets, unit_us)
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

    # -- refreshing ------------------------------------------------------------------------

    def adopt_details(self, older: RestorePoints) -> int:
        """Attach the details *older* (the same generation, loaded before) had fetched
        for segments this one also has, so a refresh does not fetch them again.
        Returns how many were attached."""
        if older.generation != self.generation:
            return 0
        attached = 0
        for position, detail in older._details.items():
            entry = older.segments[position]
            try:
                attached += self.attach_detail(entry, detail)
            except ValueError:
                continue  # not (or no longer) a segment of this index
        return attached

    def same_as(self, other: RestorePoints) -> bool:
        """Whether *other* has the same restore points (a refresh found nothing new)."""
        return (
            self.generation == other.generation
            and self.first_txid == other.first_txid
            and self.last_txid == other.last_txid
            and self.segments == other.segments
            and self.snapshot_txids == other.snapshot_txids
        )
