"""Where a replica stands: resuming its generation, or starting a new one.

A replica's generation normally follows the engine's: its records carry the
engine's txids, and record 0 holds a snapshot taken when the replica first
needs one. A replica resumes the engine's generation when it has records of
it and the spool continues them; otherwise (detached because the spool hit
its cap, or the spool does not continue what the replica holds) it starts
over from a fresh snapshot in a generation of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from litetool.engine.spool.spool import Spool
from litetool.engine.sync.segment_build import SpoolGap
from litetool.errors import LitetoolError, ObjectNotFound, ReplicaConflict, StorageUnavailable
from litetool.storage.generation_writer import GenerationWriter

LEASE_TTL_SECONDS = 60.0


class DatabaseImage(Protocol):
    """A consistent image of the database at one txid, read in chunks (the capture
    side's ``SnapshotSource``): a replica task uploads it, never opens the database."""

    txid: int
    time_us: int
    page_size: int
    page_count: int

    def chunk_count(self, chunk_size: int) -> int: ...

    def read_chunk(self, index: int, chunk_size: int) -> bytes: ...

    def close(self) -> None: ...


class EngineView(Protocol):
    """What a replica task needs from the capture side (``DatabaseReplication``)."""

    generation: str
    generation_reason: str
    txid: int
    last_time_us: int
    spool: Spool
    writer_id: str
    backpressure: bool  # the spool fills for a slow replica: publish sooner

    async def take_snapshot(self) -> DatabaseImage: ...

    def release_snapshot(self, source: DatabaseImage) -> None: ...

    def fenced(self, replica: str, exc: ReplicaConflict) -> None: ...

    def unusable(self, replica: str, exc: LitetoolError) -> bool: ...


@dataclass(slots=True)
class ReplicaPosition:
    """What this replica has published: its writer's generation and txid, and
    the engine generation whose txids it carries."""

    writer: GenerationWriter
    engine_generation: str
    snapshot_time_us: int  # when its latest snapshot was published (or taken)
    records_since_compaction: int = 0

    @property
    def generation(self) -> str:
        """The replica-side generation id."""
        assert self.writer.generation is not None
        return self.writer.generation

    @property
    def txid(self) -> int:
        """The last txid published (-1 while record 0 is not)."""
        return self.writer.last_txid

    @property
    def snapshot_txid(self) -> int:
        return self.writer.snapshot_txid


async def open_generation(
    writer: GenerationWriter,
    engine: EngineView,
    *,
    name: str,
    detached: bool,
    resume: bool,
    detach_reason: str,
    log: Callable[..., None],
) -> tuple[ReplicaPosition, bool]:
    """Open the replica and find or create this replica's generation: the
    position, and whether it is new (its record 0, a snapshot, is due: the
    writer holds its reason). *resume*: whether to look for the engine's
    generation on the replica (a replica that already has a position starts
    over instead)."""
    await writer.replica.ensure_format(create=True)
    engine_generation = engine.generation
    await writer.acquire_lease(LEASE_TTL_SECONDS, engine_generation)
    cannot_continue = ""
    if not detached and resume:
        position, cannot_continue = await resume_generation(writer, engine, engine_generation)
        if position is not None:
            return position, False
    if cannot_continue:
        # The replica has records of this generation that the spool does
        # not continue: a generation of its own, like a detached replica.
        log(
            "warning",
            "replica cannot continue its generation",
            replica=name,
            generation=engine_generation,
            reason=cannot_continue,
            action="a new generation starts from a fresh snapshot",
        )
        detached = True
    if not detached:
        writer.start(engine.generation_reason, engine_generation)
    else:
        writer.start(
            cannot_continue
            or detach_reason
            or "the replica was unreachable until the spool reached its size cap"
        )
    return ReplicaPosition(writer, engine_generation, 0), True


async def resume_generation(
    writer: GenerationWriter, engine: EngineView, engine_generation: str
) -> tuple[ReplicaPosition | None, str]:
    """Continue a generation this replica already has records of.

    Returns (position, why not): why is empty when the replica has no
    record of the generation (it starts it), else the generation is the
    replica's but cannot go on here.
    """
    try:
        tip = await writer.load_tip(engine_generation)
    except ObjectNotFound:
        return None, ""
    if tip.last_txid > engine.txid:
        # A spool tail lost to a power cut after its upload: the txids
        # after the spool's would name other transactions.
        return None, (
            f"the replica has txid {tip.last_txid} of generation {engine_generation}, "
            f"the local spool only up to {engine.txid}"
        )
    spool_first = engine.spool.first_txid
    if tip.last_txid < engine.txid and (spool_first is None or spool_first > tip.last_txid + 1):
        return None, (
            f"the local spool no longer holds the transactions after the replica's "
            f"txid {tip.last_txid}"
        )
    writer.resume(tip)
    return ReplicaPosition(
        writer,
        engine_generation,
        tip.snapshot_time_us,
        # Counted from the replica, not from this process's start: a litetool that
        # restarts often must still compact (each resume reads these records).
        tip.records_since_compaction,
    ), ""


async def reload_tip(position: ReplicaPosition, engine: EngineView) -> int:
    """Continue from the replica's tip of our generation: an earlier attempt of
    ours at the record we meant to publish next was stored although its answer
    was lost (``OwnRecordExists``), so the replica holds more than our position
    says. Without this, every later attempt would meet that record again.
    Returns the tip's last txid."""
    writer = position.writer
    tip = await writer.load_tip(position.generation)
    if tip.next_seq <= writer.next_seq:
        # The listing does not show that record yet: try again later.
        raise StorageUnavailable(
            f"the listing of {writer.replica.display_url} does not show record "
            f"{writer.next_seq} of generation {position.generation} yet"
        )
    if tip.last_txid > engine.txid:
        raise SpoolGap(
            f"the replica has txid {tip.last_txid}, the local spool only up to {engine.txid}"
        )
    writer.resume(tip)
    return tip.last_txid
