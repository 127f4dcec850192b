"""Restore planning: a pure function from index records and a target to a plan.

:func:`plan_restore` sees only :class:`~litetool.storage.GenerationIndex` values
(one per replica and generation, the *candidates*) and a
:class:`~litetool.restore.restore_point.RestoreTarget`. It makes no request, so
``--dry-run`` shows exactly what a restore would do.

Choosing the restore point (latest, ``--txid N``, ``--at T``) is
``restore.restore_point``'s; this module chooses the path to it.

Choosing the path: among the snapshots at or before the target, the one that
fetches the fewest stored bytes (snapshot bytes + bytes of the segments from
its txid + 1 through the target); ties go to fewer objects, then the later
snapshot. The segments are contiguous from ``snapshot.txid + 1`` through the
segment holding the target. The first one may start before the snapshot and
the last may end after the target: :class:`PlannedSegment` says which
transactions of each to apply, and no transaction after the target is ever
applied.

Errors: those of choosing the restore point, and ``TargetUnreachable`` when every
path to it uses an object to avoid, with a hint naming the latest earlier point
that avoids them.

Broken generations (:class:`BrokenGeneration`): a generation whose index
records could be read only up to a corrupt, missing or malformed one takes
part with the part before it (its *known* part, a candidate like any other).
The planner answers from the known parts when the broken record cannot
change the answer, and raises the broken record's error otherwise, with a
hint naming the latest restore point it can still vouch for:

- **latest** and **time T**: the break hides later restore points, so it
  matters when its generation is the chosen one or newer (generations do not
  overlap in time: a new one starts after the old one's writer stopped); for
  a time, not when the known part already holds a commit after T;
- **txid N**: when N is asked of the broken generation and lies past its
  known part.

A generation of another replica that was read whole makes the break moot.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import accumulate

from litetool.errors import (
    CorruptObject,
    LitetoolError,
    NoBackupFound,
    ObjectNotFound,
    TargetUnreachable,
)
from litetool.restore.restore_point import (
    Candidate,
    RestoreTarget,
    max_time_us,
    pick_latest,
    pick_point,
)
from litetool.storage.format.generation import DetailNeeded, GenerationIndex
from litetool.storage.format.manifest import DEFAULT_CHUNK_SIZE
from litetool.storage.format.records import SegmentDetail, SegmentEntry, SnapshotEntry
from litetool.timespec import format_instant_us


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """A segment to fetch and the transactions of it to apply
    (``first_txid..last_txid``, a sub-range of the entry's)."""

    entry: SegmentEntry
    first_txid: int
    last_txid: int

    @property
    def digest(self) -> str:
        return self.entry.digest


@dataclass(frozen=True, slots=True)
class BrokenGeneration:
    """A generation of replica ``replica`` whose index records could be read only up to
    the one at ``key``, because of ``error`` (which names it). ``known`` is the
    generation as the records before it describe it (None when the first record of
    the view is the broken one)."""

    replica: str
    generation: str
    key: str
    error: LitetoolError
    known: GenerationIndex | None

    def describe(self) -> str:
        if self.known is None:
            return f"generation {self.generation} of replica {self.replica} cannot be read"
        return (
            f"generation {self.generation} of replica {self.replica} cannot be read past "
            f"txid {self.known.last_txid}"
        )


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """Everything a restore fetches, in order, and the exact state it ends in.

    ``db_size_pages`` is the database size after ``txid`` (from its commit
    frame); ``fetch_bytes`` is the stored size of the snapshot and segments;
    ``object_count`` counts the manifest, the chunks (assuming the default
    chunk size until the manifest is read) and the segments.
    """

    replica: str
    generation: str
    snapshot: SnapshotEntry
    segments: tuple[PlannedSegment, ...]
    txid: int
    commit_time_us: int
    db_size_pages: int
    page_size: int
    fetch_bytes: int
    object_count: int

    @property
    def digests(self) -> frozenset[str]:
        """The objects the index names for this plan (manifest and segments)."""
        return frozenset([self.snapshot.manifest_digest, *(s.digest for s in self.segments)])


def plan_restore(
    candidates: Sequence[Candidate],
    target: RestoreTarget,
    *,
    avoid: Collection[str] = (),
    breaks: Sequence[BrokenGeneration] = (),
) -> RestorePlan:
    """The plan for *target* over *candidates* (see the module docstring).

    *avoid* names objects (snapshot manifests or segments) that must not be
    used, e.g. because fetching them failed; paths through them are skipped.
    *breaks*: generations read only in part (their known parts are among the
    *candidates*); the error of one that could hide the answer is raised.
    """
    try:
        plan = _plan_target(candidates, target, avoid)
    except (NoBackupFound, TargetUnreachable):
        hiding = hiding_break(None, candidates, target, breaks)
        if hiding is None:
            raise
        raise _break_error(hiding, None, candidates) from None
    hiding = hiding_break(plan, candidates, target, breaks)
    if hiding is not None:
        # The answer to a txid is that txid, not the latest point known.
        raise _break_error(hiding, None if target.txid is not None else plan, candidates)
    return plan


def hiding_break(
    plan: RestorePlan | None,
    candidates: Sequence[Candidate],
    target: RestoreTarget,
    breaks: Sequence[BrokenGeneration],
) -> BrokenGeneration | None:
    """The first of *breaks* that could hide the answer to *target* (*plan*: the answer
    from the candidates, None if there is none); see the module docstring."""
    if not breaks:
        return None
    broken_pairs = {(b.replica, b.generation) for b in breaks}
    newest = max([index.generation for _, index in candidates] + [b.generation for b in breaks])
    for broken in breaks:
        if any(
            index.generation == broken.generation and (name, index.generation) not in broken_pairs
            for name, index in candidates
        ):
            continue  # another replica holds the whole generation
        if target.generation is not None and target.generation != broken.generation:
            continue
        known = broken.known
        if target.txid is not None:
            asked = target.generation or newest
            if asked == broken.generation and (known is None or target.txid > known.last_txid):
                return broken
            continue
        if plan is not None and broken.generation < plan.generation:
            continue  # an older generation: its hidden points come before the answer
        if target.time_us is not None and known is not None and target.time_us < max_time_us(known):
            continue  # the known part holds a commit after T: the answer is in it
        return broken
    return None


def _break_error(
    broken: BrokenGeneration, plan: RestorePlan | None, candidates: Sequence[Candidate]
) -> LitetoolError:
    """*broken*'s error, with a hint naming the latest restore point known without it
    (*plan* when given: the latest point the candidates know before the break)."""
    if plan is None or plan.generation > broken.generation:
        plan = None
        known = broken.known
        if known is not None:
            plan = plan_point(broken.replica, known, known.last_txid, frozenset())
        else:
            older = [c for c in candidates if c[1].generation < broken.generation]
            if older:
                name, index = pick_latest(older)
                plan = plan_point(name, index, index.last_txid, frozenset())
    hint = (
        point_hint(plan, "the latest restore point known before it")
        if plan is not None
        else f"no other restore point of replica {broken.replica} is known"
    )
    return with_hint(broken.error, hint)


def with_hint(error: LitetoolError, hint: str) -> LitetoolError:
    """A copy of *error* with *hint* added to its own."""
    combined = f"{error.hint}; {hint}" if error.hint else hint
    if isinstance(error, CorruptObject):
        return CorruptObject(error.key, error.problem, hint=combined)
    if isinstance(error, ObjectNotFound):
        copy = ObjectNotFound(error.key, hint=combined)
        copy.message = error.message
        return copy
    return type(error)(error.message, hint=combined)


def _plan_target(
    candidates: Sequence[Candidate], target: RestoreTarget, avoid: Collection[str]
) -> RestorePlan:
    name, index, txid = pick_point(candidates, target)
    plan = plan_point(name, index, txid, frozenset(avoid))
    if plan is None:
        raise TargetUnreachable(
            f"txid {txid} of generation {index.generation} cannot be reached without "
            f"{len(avoid)} unusable object(s)",
            hint=_earlier_point_hint(name, index, txid, frozenset(avoid)),
        )
    return plan


def attach_detail(
    candidates: Sequence[Candidate], generation: str, entry: SegmentEntry, detail: SegmentDetail
) -> list[Candidate]:
    """*candidates* with *detail* attached to segment *entry* of *generation*
    (ValueError when it disagrees with the summary)."""
    return [
        (name, index.with_detail(entry, detail) if index.generation == generation else index)
        for name, index in candidates
    ]


def latest_reachable(
    name: str, index: GenerationIndex, txid: int, avoid: Collection[str]
) -> RestorePlan | None:
    """The latest restore point at or before *txid* in this candidate that some plan
    reaches without any of *avoid* (the cheapest such plan), or None.

    No segment is fetched for this: a point inside a segment known only by its
    summary gives way to the point before that segment.
    """
    paths = _Paths(index, frozenset(avoid))
    point = min(txid, index.last_txid)
    while point >= index.first_txid:
        choice = paths.cheapest(point)
        if choice is not None:
            try:
                return paths.plan(name, point, choice)
            except DetailNeeded as need:
                point = need.entry.first_txid - 1
                continue
        point = paths.below_unreachable(point)
    return None


def fallback_point(
    name: str, index: GenerationIndex, txid: int, broken: Collection[str]
) -> RestorePlan | None:
    """The latest restore point at or before *txid* in this candidate whose ordinary
    plan (what ``--txid P --generation G`` would do) uses none of *broken*.

    Checked point by point, newest first: where snapshots sit inside segments,
    the cheapest path is not monotonic in the txid, so no point can be skipped.
    No segment is fetched for this: a point inside a segment known only by its
    summary gives way to the point before that segment.
    """
    paths = _Paths(index, frozenset())
    broken_paths = _Paths(index, frozenset(broken))
    point = txid
    while point >= index.first_txid:
        choice = paths.cheapest(point)
        assert choice is not None  # nothing avoided: every point is reachable
        snapshot, start, stop, _ = choice
        if snapshot.manifest_digest not in broken_paths.avoid and not broken_paths.uses_avoided(
            start, stop
        ):
            try:
                return paths.plan(name, point, choice)
            except DetailNeeded as need:
                # Inside a segment known only by its summary: the point before it.
                point = need.entry.first_txid - 1
                continue
        point -= 1
    return None


# -- choosing the path -------------------------------------------------------------------


def plan_point(
    name: str, index: GenerationIndex, txid: int, avoid: Collection[str]
) -> RestorePlan | None:
    """The cheapest plan for restore point *txid* of this candidate that uses none of
    *avoid* (None if every path does; DetailNeeded inside a segment without detail)."""
    paths = _Paths(index, frozenset(avoid))
    choice = paths.cheapest(txid)
    return None if choice is None else paths.plan(name, txid, choice)


class _Paths:
    """Prefix sums over one generation's segments, to price every path in O(snapshots)."""

    def __init__(self, index: GenerationIndex, avoid: frozenset[str]) -> None:
        self.index = index
        self.avoid = avoid
        segments = index.segments
        self.starts = [segment.first_txid for segment in segments]
        self.sizes = [0, *accumulate(segment.stored_bytes for segment in segments)]
        self.avoided = [0, *accumulate(1 if s.digest in avoid else 0 for s in segments)]

    def uses_avoided(self, start: int, stop: int) -> bool:
        return self.avoided[stop] - self.avoided[start] > 0

    def below_unreachable(self, point: int) -> int:
        """The next point below *point* (which no path reaches) that may be reachable.

        Let A be the latest avoided segment starting at or before *point*: every
        point from A's first txid up to *point* needs A, except a point where a
        usable snapshot stands (it needs no segment). Without such an A, every
        snapshot up to *point* is avoided and nothing below is reachable either.
        """
        stop = bisect_right(self.starts, point)
        position = stop - 1
        while position >= 0 and self.index.segments[position].digest not in self.avoid:
            position -= 1
        if position < 0:
            return self.index.first_txid - 1
        first = self.index.segments[position].first_txid
        below = first - 1
        for snapshot in self.index.snapshots:
            if first <= snapshot.txid < point and snapshot.manifest_digest not in self.avoid:
                below = max(below, snapshot.txid)
        return below

    def cheapest(self, txid: int) -> tuple[SnapshotEntry, int, int, int] | None:
        """``(snapshot, start, stop, cost)``: segments ``[start, stop)`` hold transactions
        ``snapshot.txid + 1 .. txid``; None if every path uses an avoided object."""
        stop = bisect_right(self.starts, txid)
        best: tuple[tuple[int, int, int], tuple[SnapshotEntry, int, int, int]] | None = None
        for snapshot in self.index.snapshots:
            if snapshot.txid > txid:
                break
            if snapshot.manifest_digest in self.avoid:
                continue
            start = (
                stop if snapshot.txid == txid else bisect_right(self.starts, snapshot.txid + 1) - 1
            )
            if self.uses_avoided(start, stop):
                continue
            cost = snapshot.stored_bytes + self.sizes[stop] - self.sizes[start]
            key = (cost, stop - start, -snapshot.txid)
            if best is None or key < best[0]:
                best = (key, (snapshot, start, stop, cost))
        return None if best is None else best[1]

    def plan(
        self, name: str, txid: int, choice: tuple[SnapshotEntry, int, int, int]
    ) -> RestorePlan:
        snapshot, start, stop, cost = choice
        index = self.index
        planned = tuple(
            PlannedSegment(
                entry, max(entry.first_txid, snapshot.txid + 1), min(entry.last_txid, txid)
            )
            for entry in index.segments[start:stop]
        )
        chunk_count = -(-snapshot.page_count * snapshot.page_size // DEFAULT_CHUNK_SIZE)
        return RestorePlan(
            replica=name,
            generation=index.generation,
            snapshot=snapshot,
            segments=planned,
            txid=txid,
            commit_time_us=index.commit_time_us(txid),
            db_size_pages=index.db_size_pages(txid),
            page_size=index.page_size,
            fetch_bytes=cost,
            object_count=1 + chunk_count + len(planned),
        )


def _earlier_point_hint(
    name: str, index: GenerationIndex, txid: int, avoid: frozenset[str]
) -> str | None:
    plan = fallback_point(name, index, txid, avoid)
    return None if plan is None else point_hint(plan, "the latest point that avoids them")


def point_hint(plan: RestorePlan, what: str) -> str:
    """``<what> is txid N of generation G (committed T): use --txid N --generation G``."""
    when = format_instant_us(plan.commit_time_us)
    return (
        f"{what} is txid {plan.txid} of generation {plan.generation} (committed {when}): "
        f"use --txid {plan.txid} --generation {plan.generation}"
    )
