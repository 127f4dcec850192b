"""Which restore points a replica must keep (docs/FORMAT.md section 8). Pure.

Retention keeps every restore point needed to restore the database as of any
instant in the window ``[now - retention, now]``, plus the latest restore
point always:

- the restore point *in force* at the window start (the newest txid committed
  at or before it, in the newest generation that has one), because restoring
  "as of the window start" lands there;
- every restore point committed inside the window;
- the latest restore point of the latest generation.

Within a segment known only by its summary (index records of format 2), the
first transaction stands for the segment: retention may keep a little more,
never less.

A restore point ``(generation, txid)`` needs a snapshot at or before ``txid``
and every segment after that snapshot. So per generation the result is either
*expired* (nothing needed) or the txid of the oldest snapshot to keep (the
newest one at or before the oldest needed txid that sits at a segment
boundary): snapshots and segments before it are no longer needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from litetool.storage.format.generation import GenerationIndex


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """``keep_from[g]``: txid of the oldest snapshot of generation g to keep.
    ``expired``: generations with no restore point to keep."""

    keep_from: dict[str, int] = field(default_factory=dict)
    expired: tuple[str, ...] = ()


def _last_txid_at_or_before(index: GenerationIndex, time_us: int) -> int | None:
    """The newest txid of *index* committed at or before *time_us*, or an earlier one
    where only a segment's summary is known (keeping more is always safe)."""
    found = None
    if index.snapshots[0].time_us <= time_us:
        found = index.first_txid
    for segment in index.segments:
        if segment.detail is not None:
            for offset, commit_time_us in enumerate(segment.detail.times_us):
                if commit_time_us <= time_us:
                    found = segment.first_txid + offset
        elif segment.max_time_us <= time_us or segment.last_time_us <= time_us:
            found = segment.last_txid
        elif segment.first_time_us <= time_us:
            found = segment.first_txid
    return found


def _first_txid_after(index: GenerationIndex, time_us: int) -> int | None:
    """The oldest txid of *index* committed after *time_us* (in txid order), or an
    earlier one where only a segment's summary is known."""
    if index.snapshots[0].time_us > time_us:
        return index.first_txid
    for segment in index.segments:
        if segment.max_time_us <= time_us:
            continue
        if segment.detail is None:
            return segment.first_txid
        for offset, commit_time_us in enumerate(segment.detail.times_us):
            if commit_time_us > time_us:
                return segment.first_txid + offset
    return None


def _keep_from(index: GenerationIndex, txid: int) -> int:
    """The newest snapshot at or before *txid* that a trimmed view can start from: one at a
    segment boundary, so the remaining segments still start right after it."""
    best = index.first_txid
    for snapshot in index.snapshots:
        if snapshot.txid > txid:
            break
        if index.is_segment_boundary(snapshot.txid):
            best = snapshot.txid
    return best


def plan_retention(indexes: Sequence[GenerationIndex], window_start_us: int) -> RetentionPlan:
    """Plan retention for *indexes* (any order; generation ids sort by creation)."""
    ordered = sorted(indexes, key=lambda index: index.generation)
    if not ordered:
        return RetentionPlan()
    pivot: tuple[str, int] | None = None
    for index in ordered:
        txid = _last_txid_at_or_before(index, window_start_us)
        if txid is not None:
            pivot = (index.generation, txid)  # later generations win
    keep_from: dict[str, int] = {}
    expired: list[str] = []
    latest = ordered[-1].generation
    for index in ordered:
        needed: list[int] = []
        if pivot is not None and pivot[0] == index.generation:
            needed.append(pivot[1])
        inside = _first_txid_after(index, window_start_us)
        if inside is not None:
            needed.append(inside)
        if index.generation == latest:
            needed.append(index.last_txid)
        if needed:
            keep_from[index.generation] = _keep_from(index, min(needed))
        else:
            expired.append(index.generation)
    return RetentionPlan(keep_from, tuple(expired))
