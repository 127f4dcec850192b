"""Choosing the restore point: which replica, generation and txid a target names.

:func:`pick_point` sees only :class:`~litetool.storage.GenerationIndex` values
(one per replica and generation, the *candidates*) and a :class:`RestoreTarget`,
and answers with the candidate and txid to restore; the planner
(``restore.plan``) then chooses the path to it.

- **latest** (default): the restore point with the latest commit time over
  every candidate; ties go to the most recent generation, then to the first
  replica.
- **txid N**: transaction N of the given generation, or of the most recent
  generation when none is given; the first replica that holds it.
- **time T**: the *last transaction committed at or before T*. Commit times
  are per transaction; the index records summarise each segment (its first,
  last and latest time), which settles every segment but the one where T
  falls inside: for that one :func:`pick_point` raises ``DetailNeeded`` and the
  caller attaches the fetched segment's times (``restore.session.plan_fetching``)
  and plans again. The same holds for a ``--txid`` inside a segment (its time
  and database size). A time that ever went
  backwards counts as the latest time before it (running maximum), so a
  restore never includes a transaction whose time is after T. Among
  generations, the one whose time range covers T wins; when several do, the
  most recent generation, then the first replica; when none does (T falls
  after a generation's end or between generations), the latest point before
  T wins.

Errors: ``NoBackupFound`` when there are no candidates; ``TargetUnreachable``
with a hint naming a ``--txid``/``--at`` that would work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from litetool.errors import NoBackupFound, TargetUnreachable
from litetool.storage.format.generation import DetailNeeded, GenerationIndex
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


def pick_point(
    candidates: Sequence[Candidate], target: RestoreTarget
) -> tuple[str, GenerationIndex, int]:
    """``(replica name, generation index, txid)``: the restore point *target* names
    among *candidates* (see the module docstring)."""
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
        name, index = pick_latest(pool)
        txid = index.last_txid
    return name, index, txid


def pick_latest(pool: Sequence[Candidate]) -> Candidate:
    """The candidate of *pool* holding the latest restore point (see the module
    docstring for ties)."""
    best = pool[0]
    for candidate in pool[1:]:
        if _latest_key(candidate[1]) > _latest_key(best[1]):
            best = candidate
    return best


def _latest_key(index: GenerationIndex) -> tuple[int, str, int]:
    return (max_time_us(index), index.generation, index.last_txid)


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
        f"(latest: --txid {last.last_txid}, committed {format_instant_us(max_time_us(last))})"
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
        covers = time_us <= max_time_us(index)
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


def max_time_us(index: GenerationIndex) -> int:
    """The latest commit time of *index* (DetailNeeded when a segment known only by its
    summary has to say)."""
    return _running_time_us(index, index.last_txid)


def _generation_list(candidates: Iterable[Candidate], limit: int = 5) -> str:
    generations = sorted({index.generation for _, index in candidates}, reverse=True)
    shown = ", ".join(generations[:limit])
    return shown + (f" and {len(generations) - limit} older" if len(generations) > limit else "")
