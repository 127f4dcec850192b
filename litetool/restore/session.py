"""A restore from replicas: load their index records, then execute a plan.

The I/O around the pure planner:

- :func:`load_replicas` reads every generation of every replica (index
  records only; objects are fetched by the executor). A replica with no
  litetool marker or no generation contributes nothing; when no replica has
  anything the result is ``NoBackupFound``. A replica that fails to load is
  skipped with a warning when another one loaded, else its error propagates.
  A generation whose records can be read only up to a corrupt, missing or
  malformed one is kept as a :class:`~litetool.restore.plan.BrokenGeneration`:
  the part before it is a candidate, and the planner refuses only the targets
  the broken record could change (naming it, and the latest point it still
  knows). :func:`load_candidates` is the strict form: a replica with any
  broken generation fails as a whole.
- :func:`plan_fetching` plans, fetching the one segment per candidate that
  the index records only summarise when the target falls inside it
  (``DetailNeeded``), verified against its summary; when that segment is
  corrupt or missing, the error names it and hints at the latest restore
  point before it.
- :func:`restore_plan` runs the executor. When an object of the plan is
  corrupt or missing, it plans the same restore point again without it (a
  snapshot with a bad chunk or manifest is avoided as a whole; other
  replicas holding the generation are tried too), says on stderr which
  object was broken and which plan replaces it, and executes that: the next
  cheapest plan that avoids every broken object found so far. Only when no
  plan reaches the point does the restore fail, naming the object, with a
  hint naming the latest restore point that avoids every broken object found
  (``--txid``/``--generation``); if that point needs another broken object,
  its restore names that one, with the next hint.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from litetool.errors import CorruptObject, NoBackupFound, ObjectNotFound
from litetool.restore.execute import DEFAULT_PARALLELISM, RestoreResult, execute_plan
from litetool.restore.plan import (
    BrokenGeneration,
    Candidate,
    RestorePlan,
    RestoreTarget,
    attach_detail,
    fallback_point,
    latest_reachable,
    plan_point,
    plan_restore,
    point_hint,
)
from litetool.restore.progress import ProgressReporter
from litetool.storage import Replica
from litetool.storage.format.generation import DetailNeeded
from litetool.storage.format.keys import object_key, try_parse_key
from litetool.storage.format.records import SegmentDetail


@dataclass
class Loaded:
    """What :func:`load_replicas` found: the candidates (the known part of a broken
    generation among them) and the broken generations."""

    candidates: list[Candidate] = field(default_factory=list)
    breaks: list[BrokenGeneration] = field(default_factory=list)


async def load_replicas(
    replicas: Sequence[Replica], *, warn: Callable[[str], None] | None = None
) -> Loaded:
    """Every generation of every replica, replicas in the given order, generations
    oldest first (see the module docstring)."""
    results = await asyncio.gather(
        *(_load_replica(replica) for replica in replicas), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    loaded = Loaded()
    failures = []
    for replica, result in zip(replicas, results, strict=True):
        if isinstance(result, BaseException):
            failures.append((replica, result))
            continue
        loaded.candidates += result.candidates
        loaded.breaks += result.breaks
    if failures and not loaded.candidates and not loaded.breaks:
        raise failures[0][1]
    for replica, error in failures:
        if warn is not None:
            warn(f"skipping replica {replica.name} ({replica.display_url}): {error}")
    if not loaded.candidates and not loaded.breaks:
        where = ", ".join(
            replica.display_url if len(replicas) == 1 else f"{replica.name} ({replica.display_url})"
            for replica in replicas
        )
        raise NoBackupFound(f"no backups found in {where}")
    return loaded


async def load_candidates(
    replicas: Sequence[Replica], *, warn: Callable[[str], None] | None = None
) -> list[Candidate]:
    """``(replica name, generation index)`` for every generation, replicas in the
    given order, generations oldest first; a replica with a broken generation is a
    replica that failed to load (see the module docstring)."""
    results = await asyncio.gather(
        *(_load_replica(replica) for replica in replicas), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    strict: list[list[Candidate] | BaseException] = []
    for result in results:
        if not isinstance(result, BaseException) and result.breaks:
            strict.append(result.breaks[0].error)
        else:
            strict.append(result if isinstance(result, BaseException) else result.candidates)
    loaded = [result for result in strict if not isinstance(result, BaseException)]
    failures = [
        (replica, result)
        for replica, result in zip(replicas, strict, strict=True)
        if isinstance(result, BaseException)
    ]
    candidates = [candidate for found in loaded for candidate in found]
    if failures and not candidates:
        raise failures[0][1]
    for replica, error in failures:
        if warn is not None:
            warn(f"skipping replica {replica.name} ({replica.display_url}): {error}")
    if not candidates:
        where = ", ".join(
            replica.display_url if len(replicas) == 1 else f"{replica.name} ({replica.display_url})"
            for replica in replicas
        )
        raise NoBackupFound(f"no backups found in {where}")
    return candidates


async def _load_replica(replica: Replica) -> Loaded:
    try:
        await replica.ensure_format(create=False)
    except ObjectNotFound:
        return Loaded()
    loaded = Loaded()
    for part in await replica.index.load_known_parts():
        if part.index is not None:
            loaded.candidates.append((replica.name, part.index))
        if part.error is not None:
            loaded.breaks.append(
                BrokenGeneration(replica.name, part.generation, part.key, part.error, part.index)
            )
    return loaded


async def plan_fetching(
    candidates: Sequence[Candidate],
    target: RestoreTarget,
    replicas: Sequence[Replica],
    *,
    avoid: Collection[str] = (),
    breaks: Sequence[BrokenGeneration] = (),
) -> tuple[RestorePlan, list[Candidate]]:
    """:func:`plan_restore`, fetching each segment the planner needs the detail of;
    returns the plan and the candidates with those details attached. A segment that
    cannot be fetched fails the planning, with a hint naming the latest restore point
    before it that avoids it."""
    candidates = list(candidates)
    fetched: set[tuple[str, str]] = set()
    while True:
        try:
            return plan_restore(candidates, target, avoid=avoid, breaks=breaks), candidates
        except DetailNeeded as need:
            wanted = (need.generation, need.entry.digest)
            if wanted in fetched:
                raise AssertionError(f"detail of {wanted} attached but still needed") from None
            fetched.add(wanted)
            try:
                detail = await fetch_detail(replicas, candidates, need)
            except (CorruptObject, ObjectNotFound) as exc:
                entry = need.entry
                holders = [
                    (name, index)
                    for name, index in candidates
                    if index.generation == need.generation and entry.first_txid in index
                ]
                broken = {name: {entry.digest} for name, _ in holders}
                hint = await _still_works_hint(
                    replicas, candidates, holders, entry.first_txid - 1, broken, {}
                )
                exc.hint = f"{exc.hint}; {hint}" if exc.hint else hint
                raise
            candidates = attach_detail(candidates, need.generation, need.entry, detail)


async def fetch_detail(
    replicas: Sequence[Replica], candidates: Sequence[Candidate], need: DetailNeeded
) -> SegmentDetail:
    """The per-transaction detail of the segment *need* names, from the first replica
    whose view of that generation names it (CorruptObject if it disagrees with its
    summary; the next replica is tried when it is missing or corrupt)."""
    entry = need.entry
    by_name = {replica.name: replica for replica in replicas}
    holders = [
        by_name[name]
        for name, index in candidates
        if name in by_name
        and index.generation == need.generation
        and any(segment.digest == entry.digest for segment in index.segments)
    ]
    error: Exception | None = None
    for replica in dict.fromkeys(holders):  # candidates' order, each replica once
        try:
            return await replica.fetch_detail(entry)
        except (CorruptObject, ObjectNotFound) as exc:
            error = error or exc
    if error is None:
        raise ObjectNotFound(object_key(entry.digest), hint="no replica names this segment")
    raise error


async def restore_plan(
    plan: RestorePlan,
    replicas: Sequence[Replica],
    candidates: Sequence[Candidate],
    out_path: str | os.PathLike[str],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    progress: ProgressReporter | None = None,
    warn: Callable[[str], None] | None = None,
) -> RestoreResult:
    """Execute *plan*; when one of its objects is broken, the next cheapest plan for the
    same restore point that avoids it (see the module docstring)."""
    by_name = {replica.name: replica for replica in replicas}
    broken: dict[str, set[str]] = {}  # per replica: manifests and segments not to use
    broken_chunks: dict[str, set[str]] = {}
    while True:
        try:
            return await execute_plan(
                plan, by_name[plan.replica], out_path, parallelism=parallelism, progress=progress
            )
        except (CorruptObject, ObjectNotFound) as exc:
            unusable = _unusable_object(plan, exc.key)
            if unusable is None:
                raise
            broken.setdefault(plan.replica, set()).add(unusable)
            digest = try_parse_key(exc.key).digest  # type: ignore[union-attr]
            if digest != unusable:
                broken_chunks.setdefault(plan.replica, set()).add(digest)  # type: ignore[arg-type]
            holders = _holders(plan, candidates)
            alternative = await _working_plan(
                replicas, holders, plan.txid, broken, broken_chunks, exact=True
            )
            if alternative is None:
                hint = await _still_works_hint(
                    replicas, candidates, holders, plan.txid, broken, broken_chunks
                )
                exc.hint = f"{exc.hint}; {hint}" if exc.hint else hint
                raise
            if warn is not None:
                several = len(by_name) > 1
                warn(f"{exc.message}; restoring {_describe(alternative, several)} instead")
            plan = alternative


def _unusable_object(plan: RestorePlan, key: str) -> str | None:
    """The manifest or segment of *plan* that the broken object at *key* makes
    unusable (a chunk: its snapshot's manifest); None for a key the plan does not use."""
    parsed = try_parse_key(key)
    if parsed is None or parsed.digest is None:
        return None
    return parsed.digest if parsed.digest in plan.digests else plan.snapshot.manifest_digest


def _holders(plan: RestorePlan, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates of the plan's generation that hold its txid, its replica first."""
    holders = [
        (name, index)
        for name, index in candidates
        if index.generation == plan.generation and plan.txid in index
    ]
    return sorted(holders, key=lambda candidate: candidate[0] != plan.replica)


def _describe(plan: RestorePlan, name_replica: bool) -> str:
    segments = len(plan.segments)
    what = "no segment" if not segments else f"{segments} segment{'s' * (segments > 1)}"
    where = f" from replica {plan.replica}" if name_replica else ""
    return (
        f"txid {plan.txid} of generation {plan.generation}{where}: "
        f"the snapshot at txid {plan.snapshot.txid} and {what}"
    )


async def _working_plan(
    replicas: Sequence[Replica],
    holders: Sequence[Candidate],
    txid: int,
    broken: dict[str, set[str]],
    broken_chunks: dict[str, set[str]],
    *,
    exact: bool,
) -> RestorePlan | None:
    """The cheapest plan, over *holders* in order, for restore point *txid* (``exact``)
    or the latest point at or before it, that avoids every broken object known. Its
    manifest is read first: a snapshot that names a chunk known to be broken (chunks
    are shared between snapshots) or whose manifest is broken is avoided too, so the
    plan returned does not fail again on what is already known."""
    by_name = {replica.name: replica for replica in replicas}
    for name, index in holders:
        while True:
            avoid = broken.setdefault(name, set())
            try:
                if exact:
                    found = plan_point(name, index, txid, avoid) if txid in index else None
                else:
                    found = latest_reachable(name, index, txid, avoid)
            except DetailNeeded:
                found = None
            if found is None:
                break
            replica = by_name.get(name)
            if replica is None:
                return found
            manifest_digest = found.snapshot.manifest_digest
            try:
                manifest = await replica.fetch_manifest(manifest_digest, snapshot=found.snapshot)
            except (CorruptObject, ObjectNotFound):
                avoid.add(manifest_digest)
                continue
            if broken_chunks.get(name, set()).intersection(manifest.chunks):
                avoid.add(manifest_digest)
                continue
            return found
    return None


async def _still_works_hint(
    replicas: Sequence[Replica],
    candidates: Sequence[Candidate],
    holders: Sequence[Candidate],
    txid: int,
    broken: dict[str, set[str]],
    broken_chunks: dict[str, set[str]],
) -> str:
    """Names the latest restore point at or before *txid* that avoids every broken
    object known: in the holders' generation, else in an older generation."""
    found = await _working_plan(replicas, holders, txid, broken, broken_chunks, exact=False)
    if found is None and holders:
        generation = holders[0][1].generation
        older = sorted(
            (c for c in candidates if c[1].generation < generation),
            key=lambda c: c[1].generation,
            reverse=True,
        )
        for name, index in older:
            found = await _working_plan(
                replicas, [(name, index)], index.last_txid, broken, broken_chunks, exact=False
            )
            if found is not None:
                break
    if found is None:
        return "no earlier restore point avoids it"
    # Only what was read is known to be broken: another object the point needs may be
    # broken too, and its restore then names that one, with the next hint.
    known = sum(len(digests) for digests in broken.values()) + sum(
        len(digests) for digests in broken_chunks.values()
    )
    what = "it" if known <= 1 else "every broken object found"
    text = point_hint(found, f"the latest restore point that avoids {what}")
    if len({name for name, _ in candidates}) > 1:
        text += f" --replica {found.replica}"
    return text


def broken_object_hint(plan: RestorePlan, candidates: Sequence[Candidate], key: str) -> str | None:
    """What to do when the object at *key* (named by *plan*, or a chunk of its
    snapshot) cannot be used: the latest restore point that avoids it."""
    parsed = try_parse_key(key)
    if parsed is None or parsed.digest is None:
        return None
    # A chunk is named by the snapshot's manifest: the whole snapshot is unusable.
    broken = parsed.digest if parsed.digest in plan.digests else plan.snapshot.manifest_digest
    index = next(
        index
        for name, index in candidates
        if name == plan.replica and index.generation == plan.generation
    )
    fallback = fallback_point(plan.replica, index, plan.txid, {broken})
    several_replicas = len({name for name, _ in candidates}) > 1
    if fallback is None:
        text = f"no earlier restore point of generation {plan.generation} avoids it"
    else:
        text = point_hint(fallback, "the latest restore point without it")
        if several_replicas:
            text += f" --replica {plan.replica}"
    others = [
        name
        for name, other in candidates
        if several_replicas
        and name != plan.replica
        and other.generation == plan.generation
        and plan.txid in other
    ]
    if others:
        text += f"; replica {others[0]} also holds txid {plan.txid}: try --replica {others[0]}"
    return text
