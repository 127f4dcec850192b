"""Restore planning: a pure function from index records and a target to a plan.

:func:`plan_restore` sees only :class:`~litetool.storage.GenerationIndex` values
(one per replica and generation, the *candidates*) and a :class:`RestoreTarget`.
It makes no request, so ``--dry-run`` shows exactly what a restore would do.

Choosing the restore point:

- **latest** (default): the restore point with the latest commit time over
  every candidate; ties go to the most recent generation, then to the first
  replica.
- **txid N**: transaction N of the given generation, or of the most recent
  generation when none is given; the first replica that holds it.
- **time T**: the *last transaction committed at or before T*. Commit times
  are per transaction; the index records summarise each segment (its first,
  last and latest time), which settles every segment but the one where T
  falls inside: for that one the planner raises ``DetailNeeded`` and the
  caller attaches the fetched segment's times (``restore.session.plan_fetching``)
  and plans again. The same holds for a ``--txid`` inside a segment (its time
  and database size). A time that ever went
  backwards counts as the latest time before it (running maximum), so a
  restore never includes a transaction whose time is after T. Among
  generations, the one whose time range covers T wins; when several do, the
  most recent generation, then the first replica; when none does (T falls
  after a generation's end or between generations), the latest point before
  T wins.

Choosing the path: among the snapshots at or before the target, the one that
fetches the fewest stored bytes (snapshot bytes + bytes of the segments from
its txid + 1 through the target); ties go to fewer objects, then the later
snapshot. The segments are contiguous from ``snapshot.txid + 1`` through the
segment holding the target. The first one may start before the snapshot and
the last may end after the target: :class:`PlannedSegment` says which
transactions of each to apply, and no transaction after the target is ever
applied.

Errors: ``NoBackupFound`` when there are no candidates; ``TargetUnreachable``
with a hint naming a ``--txid``/``--at`` that would work.

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
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from litetool.errors import (
    CorruptObject,
    LitetoolError,
    NoBackupFound,
    ObjectNotFound,
    TargetUnreachable,
)
from litetool.storage.format.generation import DetailNeeded, GenerationIndex
from litetool.storage.format.manifest import DEFAULT_CHUNK_SIZE
from litetool.storage.format.records import SegmentDetail, SegmentEntry, SnapshotEntry
from litetool.timespec import format_instant_us

#: ``(replica name, generation index)``: what the planner chooses from.
Candidate = tuple[str, GenerationIndex]


@dataclass(frozen=True, slots=True)
class RestoreTarget:
    """The restore point asked for: latest (no fields), ``txid`` or ``time_us``,
    optionally restricted to ``generation``."""

    time_us: int | None = None
    txid: int | None = None
    generation: str | None = None

    def __post_init__(self) -> None:
        if self.time_us is not None and self.txid is not None:
            raise ValueError("a restore target is a time or a txid, not both")

    def describe(self) -> str:
        if self.txid is not None:
            what = f"txid {self.txid}"
        elif self.time_us is not None:
            what = f"the last transaction at or before {format_instant_us(self.time_us)}"
        else:
            what = "the latest restore point"
        return f"{what} of generation {self.generation}" if self.generation else what


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
        if (
            target.time_us is not None
            and known is not None
            and target.time_us < _max_time_us(known)
        ):
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
                name, index = _pick_latest(older)
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
    if not candidates:
        raise NoBackupFound("no backups found")
    pool = [c for c in candidates if target.generation in (None, c[1].generation)]
    if not pool:
        raise TargetUnreachable(
            f"generation {target.generation} not found",
            hint=f"the generations are {_generation_list(candidates)}",
        )
    if target.txid is not None:
        name, index = _pick_txid(pool, candidates, target)
        txid = target.txid
    elif target.time_us is not None:
        name, index, txid = _pick_time(pool, target)
    else:
        name, index = _pick_latest(pool)
        txid = index.last_txid
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


# -- choosing the restore point ----------------------------------------------------------


def _pick_latest(pool: Sequence[Candidate]) -> Candidate:
    best = pool[0]
    for candidate in pool[1:]:
        if _latest_key(candidate[1]) > _latest_key(best[1]):
            best = candidate
    return best


def _latest_key(index: GenerationIndex) -> tuple[int, str, int]:
    return (_max_time_us(index), index.generation, index.last_txid)


def _pick_txid(
    pool: Sequence[Candidate], candidates: Sequence[Candidate], target: RestoreTarget
) -> Candidate:
    txid = target.txid
    assert txid is not None
    generation = target.generation or max(index.generation for _, index in pool)
    in_generation = [c for c in pool if c[1].generation == generation]
    for candidate in in_generation:
        if txid in candidate[1]:
            return candidate
    first = min(index.first_txid for _, index in in_generation)
    last = max((index for _, index in in_generation), key=lambda index: index.last_txid)
    hint = (
        f"generation {generation} has txids {first}..{last.last_txid} "
        f"(latest: --txid {last.last_txid}, committed {format_instant_us(_max_time_us(last))})"
    )
    others = sorted(
        {index.generation for _, index in candidates if txid in index} - {generation},
        reverse=True,
    )
    if others:
        hint += f"; txid {txid} is in generation {others[0]}: add --generation {others[0]}"
    where = "the latest generation" if target.generation is None else "generation"
    raise TargetUnreachable(
        f"txid {txid} is not a restore point of {where} {generation}", hint=hint
    )


def _pick_time(
    pool: Sequence[Candidate], target: RestoreTarget
) -> tuple[str, GenerationIndex, int]:
    time_us = target.time_us
    assert time_us is not None
    best: tuple[tuple, str, GenerationIndex, int] | None = None
    for order, (name, index) in enumerate(pool):
        landing = last_txid_at_or_before(index, time_us)
        if landing is None:
            continue
        covers = time_us <= _max_time_us(index)
        # Covering generations first; among the others the latest point before T.
        key = (
            covers,
            0 if covers else _running_time_us(index, landing),
            index.generation,
            -order,
        )
        if best is None or key > best[0]:
            best = (key, name, index, landing)
    if best is None:
        name, earliest = min(pool, key=lambda c: (c[1].first_commit_time_us, c[1].generation))
        when = format_instant_us(earliest.first_commit_time_us)
        raise TargetUnreachable(
            f"no restore point at or before {format_instant_us(time_us)}",
            hint=f"the earliest restore point is {when} (txid {earliest.first_txid} of "
            f"generation {earliest.generation}): use --at {when} or later",
        )
    return best[1], best[2], best[3]


def last_txid_at_or_before(index: GenerationIndex, time_us: int) -> int | None:
    """The last txid of *index* whose commit time (as a running maximum) is <= *time_us*;
    None when even the first restore point is later.

    Segment summaries decide every segment but the one where the running maximum
    passes *time_us*; that one needs its detail (``DetailNeeded``) unless its
    first transaction is already too late.
    """
    running = index.first_commit_time_us
    if running > time_us:
        return None
    landing = index.first_txid
    for segment in index.segments:
        if segment.last_txid <= index.first_txid:
            continue
        if max(running, segment.max_time_us) <= time_us:
            running = max(running, segment.max_time_us)
            landing = segment.last_txid
            continue
        if segment.first_txid > index.first_txid and segment.first_time_us > time_us:
            return landing
        if segment.detail is None:
            raise DetailNeeded(index.generation, segment)
        for offset, commit_time_us in enumerate(segment.detail.times_us):
            txid = segment.first_txid + offset
            if txid <= index.first_txid:
                continue
            running = max(running, commit_time_us)
            if running > time_us:
                return landing
            landing = txid
    return landing


def _running_time_us(index: GenerationIndex, txid: int) -> int:
    """The running-maximum commit time of *txid* (DetailNeeded inside a segment
    known only by its summary)."""
    running = index.first_commit_time_us
    for segment in index.segments:
        if segment.first_txid > txid:
            break
        if txid >= segment.last_txid:
            running = max(running, segment.max_time_us)
            continue
        if segment.detail is None:
            raise DetailNeeded(index.generation, segment)
        upto = txid - segment.first_txid + 1
        running = max(running, max(segment.detail.times_us[:upto]))
    return running


def _max_time_us(index: GenerationIndex) -> int:
    return _running_time_us(index, index.last_txid)


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


def _generation_list(candidates: Iterable[Candidate], limit: int = 5) -> str:
    generations = sorted({index.generation for _, index in candidates}, reverse=True)
    shown = ", ".join(generations[:limit])
    return shown + (f" and {len(generations) - limit} older" if len(generations) > limit else "")
