"""A restore from replicas: load their index records, then execute a plan.

The I/O around the pure planner:

- :func:`load_candidates` reads every generation of every replica (index
  records only; objects are fetched by the executor). A replica with no
  litetool marker or no generation contributes nothing; when no replica has
  anything the result is ``NoBackupFound``. A replica that fails to load is
  skipped with a warning when another one loaded, else its error propagates.
- :func:`plan_fetching` plans, fetching the one segment per candidate that
  the index records only summarise when the target falls inside it
  (``DetailNeeded``), verified against its summary.
- :func:`restore_plan` runs the executor and, when an object is corrupt or
  missing, adds a hint naming the latest restore point that does not need
  it (``--txid``/``--generation``), so the user can still get the most recent
  complete state.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Sequence

from litetool.errors import CorruptObject, NoBackupFound, ObjectNotFound
from litetool.restore.execute import DEFAULT_PARALLELISM, RestoreResult, execute_plan
from litetool.restore.plan import (
    Candidate,
    RestorePlan,
    RestoreTarget,
    attach_detail,
    fallback_point,
    plan_restore,
    point_hint,
)
from litetool.restore.progress import ProgressReporter
from litetool.storage import Replica
from litetool.storage.generation import DetailNeeded
from litetool.storage.keys import object_key, try_parse_key
from litetool.storage.records import SegmentDetail
from litetool.storage.replica import gather_limited


async def load_candidates(
    replicas: Sequence[Replica], *, warn: Callable[[str], None] | None = None
) -> list[Candidate]:
    """``(replica name, generation index)`` for every generation, replicas in the
    given order, generations oldest first (see the module docstring)."""
    results = await asyncio.gather(
        *(_load_replica(replica) for replica in replicas), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    loaded = [result for result in results if not isinstance(result, BaseException)]
    failures = [
        (replica, result)
        for replica, result in zip(replicas, results, strict=True)
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


async def _load_replica(replica: Replica) -> list[Candidate]:
    try:
        await replica.ensure_format(create=False)
    except ObjectNotFound:
        return []
    listing = await replica.list_record_keys()
    generations = sorted(listing)
    indexes = await gather_limited(
        (
            (lambda generation=generation: replica.load_view(generation, listing[generation]))
            for generation in generations
        ),
        replica.concurrency,
    )
    return [(replica.name, index) for index in indexes]


async def plan_fetching(
    candidates: Sequence[Candidate],
    target: RestoreTarget,
    replicas: Sequence[Replica],
    *,
    avoid: Collection[str] = (),
) -> tuple[RestorePlan, list[Candidate]]:
    """:func:`plan_restore`, fetching each segment the planner needs the detail of;
    returns the plan and the candidates with those details attached."""
    candidates = list(candidates)
    fetched: set[tuple[str, str]] = set()
    while True:
        try:
            return plan_restore(candidates, target, avoid=avoid), candidates
        except DetailNeeded as need:
            wanted = (need.generation, need.entry.digest)
            if wanted in fetched:
                raise AssertionError(f"detail of {wanted} attached but still needed") from None
            fetched.add(wanted)
            detail = await fetch_detail(replicas, candidates, need)
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
) -> RestoreResult:
    """Execute *plan* from the replica it names; a broken object gets a hint."""
    replica = next(replica for replica in replicas if replica.name == plan.replica)
    try:
        return await execute_plan(
            plan, replica, out_path, parallelism=parallelism, progress=progress
        )
    except (CorruptObject, ObjectNotFound) as exc:
        hint = broken_object_hint(plan, candidates, exc.key)
        if hint:
            exc.hint = f"{exc.hint}; {hint}" if exc.hint else hint
        raise


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
