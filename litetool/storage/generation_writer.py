"""Writing generations: the one way anything publishes index records of its own.

A :class:`GenerationWriter` writes one replica's generations for one writer
(a litetool process, a test's builder, a tool that imports a replica). It
takes the replica's lease, starts a generation (minting its id) or resumes
one from the replica's tip, stores the objects a record will name, then
publishes the record: the commit point (docs/FORMAT.md sections 5-7). It
keeps a writer from breaking the rules a reader checks:

- records are numbered ``0, 1, 2, ...`` within the generation;
- record 0 names a snapshot and says why the generation started (its
  reason); later index records carry no reason;
- segments are contiguous (``check_contiguous``): the first starts at the
  first snapshot's txid + 1, each next one at the previous last txid + 1;
  snapshot txids never go back and none is beyond the last txid;
- every segment and snapshot a record names was stored through this writer
  before the record (a snapshot's chunks before its manifest:
  ``Replica.put_snapshot``);
- while it holds the lease, the lease is renewed (when past half its life)
  before each record is published.

A record that would break a rule is refused (``ReplicaFormatError``) before
anything is written. Compaction writes compacted records of its own
(``Replica.compact``); they never take a seq of their own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Iterable, Sequence

from litetool.crashpoints import crash_point
from litetool.errors import ReplicaFormatError
from litetool.storage.format.envelope import ObjectKind
from litetool.storage.format.generation import check_contiguous
from litetool.storage.format.keys import new_generation_id, validate_generation
from litetool.storage.format.manifest import DEFAULT_CHUNK_SIZE
from litetool.storage.format.records import (
    IndexRecord,
    SegmentDetail,
    SegmentEntry,
    SnapshotEntry,
)
from litetool.storage.index import GenerationTip
from litetool.storage.lease import Lease
from litetool.storage.replica import Buffer, Replica


def _now_us() -> int:
    return time.time_ns() // 1000


class GenerationWriter:
    """Publishes the index records of one replica's generations, in order.

    ``generation`` is None until :meth:`start` or :meth:`resume`. ``last_txid``
    is -1 while record 0 is not published; ``snapshot_txid`` is the txid of
    the latest snapshot published (-1 before record 0).
    """

    def __init__(
        self, replica: Replica, writer: str, *, now_us: Callable[[], int] = _now_us
    ) -> None:
        self.replica = replica
        self.writer = writer
        self.now_us = now_us  # ``created_us`` of each record
        self.lease: Lease | None = None
        self.generation: str | None = None
        self.reason: str | None = None  # said by record 0, until it is published
        self.next_seq = 0
        self.last_txid = -1
        self.snapshot_txid = -1
        # Digests of the segments and manifests stored since the records naming
        # them: a record names nothing else.
        self._stored: set[str] = set()

    # -- the lease ------------------------------------------------------------------------

    async def acquire_lease(self, ttl_seconds: float, generation: str) -> Lease:
        """Take the replica's lease, unless this writer holds it already
        (ReplicaConflict when another live writer holds it)."""
        if self.lease is None:
            self.lease = await self.replica.acquire_lease(self.writer, ttl_seconds, generation)
        return self.lease

    async def release_lease(self) -> None:
        """Give the lease up (deleting ``lease.json`` if it is still ours)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            await self.replica.release_lease(lease)

    # -- which generation -----------------------------------------------------------------

    @staticmethod
    def new_generation_id() -> str:
        """A fresh generation id: the one place litetool mints them, for the
        engine's own generations (``CaptureSide.new_generation``) and for a
        replica that starts one of its own (:meth:`start`)."""
        return new_generation_id()

    def start(self, reason: str, generation: str | None = None) -> str:
        """Begin a new generation (a fresh id unless *generation* is given: the
        engine's own); its record 0 will name a snapshot and *reason*."""
        self.generation = self.new_generation_id() if generation is None else generation
        validate_generation(self.generation)
        self.reason = reason
        self.next_seq = 0
        self.last_txid = self.snapshot_txid = -1
        self._stored.clear()
        return self.generation

    async def load_tip(self, generation: str) -> GenerationTip:
        """Where *generation* ends on the replica (see ``Replica.load_tip``)."""
        return await self.replica.load_tip(generation)

    def resume(self, tip: GenerationTip) -> None:
        """Continue the generation that ends at *tip* (from :meth:`load_tip`).

        Resuming the generation this writer is in (its record was stored by an
        earlier attempt whose answer was lost) never moves ``last_txid`` back.
        """
        if tip.generation == self.generation:
            self.last_txid = max(self.last_txid, tip.last_txid)
        else:
            self.generation = tip.generation
            self.last_txid = tip.last_txid
            self._stored.clear()
        self.reason = None
        self.next_seq = tip.next_seq
        self.snapshot_txid = tip.snapshot_txid

    # -- objects before the record that names them ---------------------------------------

    async def put_segment(
        self,
        payload: Buffer,
        *,
        first_txid: int,
        page_size: int,
        frames: int,
        detail: SegmentDetail,
        keep_detail: bool = False,
    ) -> SegmentEntry:
        """Store a segment payload (FORMAT.md section 3); its index entry.
        *detail*: the commit time and database size of each transaction."""
        ref = await self.replica.put_object(ObjectKind.SEGMENT, payload)
        self._stored.add(ref.digest)
        return SegmentEntry.summarise(
            ref.digest,
            first_txid,
            ref.stored_bytes,
            page_size,
            frames,
            detail,
            keep_detail=keep_detail,
        )

    async def put_snapshot(
        self,
        chunks: Iterable[Buffer] | AsyncIterable[Buffer],
        *,
        txid: int,
        time_us: int,
        page_size: int,
        page_count: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> SnapshotEntry:
        """Store a database image (its chunks, then its manifest); its index entry."""
        entry = await self.replica.put_snapshot(
            chunks,
            txid=txid,
            time_us=time_us,
            page_size=page_size,
            page_count=page_count,
            chunk_size=chunk_size,
        )
        self._stored.add(entry.manifest_digest)
        return entry

    # -- the record -----------------------------------------------------------------------

    def next_record(
        self,
        snapshots: Sequence[SnapshotEntry] = (),
        segments: Sequence[SegmentEntry] = (),
    ) -> IndexRecord:
        """The record that would publish *snapshots* and *segments* next;
        ``ReplicaFormatError`` when it would break a rule (module docstring)."""
        generation = self.generation
        if generation is None:
            raise ReplicaFormatError("no generation started or resumed to publish in")
        seq = self.next_seq
        last_txid = self.last_txid
        if seq == 0:
            if not snapshots:
                raise ReplicaFormatError(f"generation {generation}: record 0 must name a snapshot")
            last_txid = snapshots[0].txid
        end = check_contiguous(generation, segments, last_txid + 1)
        assert end is not None
        last_txid = end - 1
        latest = self.snapshot_txid
        for snapshot in snapshots:
            if not latest <= snapshot.txid <= last_txid:
                raise ReplicaFormatError(
                    f"generation {generation}: snapshot at txid {snapshot.txid} is out of "
                    f"order or beyond the last txid {last_txid} (record {seq})"
                )
            latest = snapshot.txid
        named = [s.manifest_digest for s in snapshots] + [s.digest for s in segments]
        missing = [digest for digest in named if digest not in self._stored]
        if missing:
            raise ReplicaFormatError(
                f"generation {generation}: record {seq} would name object {missing[0][:12]}, "
                "which this writer has not stored"
            )
        return IndexRecord(
            generation=generation,
            seq=seq,
            created_us=self.now_us(),
            writer=self.writer,
            snapshots=tuple(snapshots),
            segments=tuple(segments),
            reason=self.reason if seq == 0 else None,
        )

    async def publish(
        self,
        *,
        snapshots: Sequence[SnapshotEntry] = (),
        segments: Sequence[SegmentEntry] = (),
    ) -> IndexRecord:
        """Publish the next index record (the commit point); see ``Replica.publish_record``
        for what a record already stored means (ReplicaConflict, OwnRecordExists)."""
        record = self.next_record(snapshots, segments)
        if self.lease is not None:
            self.lease = await self.replica.renew_lease_if_needed(self.lease)
        await self.replica.publish_record(record)
        crash_point("record-published")
        self.next_seq = record.seq + 1
        if record.segments:
            self.last_txid = record.segments[-1].last_txid
        elif record.seq == 0:
            self.last_txid = record.snapshots[0].txid
        if record.snapshots:
            self.snapshot_txid = record.snapshots[-1].txid
        self.reason = None
        for digest in [s.manifest_digest for s in snapshots] + [s.digest for s in segments]:
            self._stored.discard(digest)
        return record
