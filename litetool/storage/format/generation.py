"""The pure view of one generation, built from its index records.

A reader lists ``generations/<g>/index/`` and ``generations/<g>/compacted/``,
walks back from the highest seq to find the records of the view
(:func:`walk_view`, docs/FORMAT.md section 5), fetches those and hands them
to :meth:`GenerationIndex.from_records`. The index then checks the rules of
docs/FORMAT.md section 5 and answers what a restore planner and ``status``
need: the snapshots and segments in order, the range of restore points
(txids) with their commit times and db sizes.

Rules (``ReplicaFormatError`` when broken):

- the records of the view follow each other without gaps (each starts at the
  previous one's seq + 1), and the first is record 0 or a compacted record;
- the first record of the view names a snapshot; snapshot txids never
  decrease and none is beyond the last txid;
- segments are contiguous: the first starts at the first snapshot's
  txid + 1, each next one at the previous ``last_txid + 1``;
- every snapshot and segment has the same page size.

Segments carry summaries (format 2): the commit time and database size of a
transaction inside a segment are known only once its :class:`SegmentDetail`
is attached (:meth:`GenerationIndex.with_detail`). Asking for one before
raises :class:`DetailNeeded`, which names the segment to fetch.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol, TypeVar

from litetool.errors import ReplicaFormatError
from litetool.storage.format.keys import parse_generation_time_ms, validate_generation
from litetool.storage.format.records import IndexRecord, SegmentDetail, SegmentEntry, SnapshotEntry

#: A compacted record holds at most this many entries (snapshots + segments)
#: when it absorbs the one before it (docs/FORMAT.md section 5).
MAX_COMPACTED_ENTRIES = 8192


def check_contiguous(
    generation: str, segments: Iterable[SegmentEntry], next_txid: int | None
) -> int | None:
    """The contiguity rule (docs/FORMAT.md section 5): each segment starts at
    *next_txid* (any txid when None), each next one at the previous ``last_txid + 1``.

    Returns the txid after the last segment (*next_txid* when there is none);
    ``ReplicaFormatError`` naming the first segment that breaks the rule. The
    one home of the rule: readers check their view with it, a writer what it
    is about to publish (``GenerationWriter``).
    """
    for segment in segments:
        if next_txid is not None and segment.first_txid != next_txid:
            raise ReplicaFormatError(
                f"generation {generation}: segments are not contiguous: expected txid "
                f"{next_txid}, segment {segment.digest[:12]} starts at {segment.first_txid}"
            )
        next_txid = segment.last_txid + 1
    return next_txid


class DetailNeeded(LookupError):
    """A value inside a segment whose per-transaction detail is not attached:
    fetch the segment named by ``entry`` and attach it (``with_detail``)."""

    def __init__(self, generation: str, entry: SegmentEntry) -> None:
        super().__init__(
            f"segment {entry.digest[:12]} of generation {generation} "
            f"(txids {entry.first_txid}..{entry.last_txid}) is needed"
        )
        self.generation = generation
        self.entry = entry


class ViewItem(Protocol):
    """What the view walk needs of a record or of a record key."""

    @property
    def seq(self) -> int: ...
    @property
    def first_seq(self) -> int: ...
    @property
    def compacted(self) -> bool: ...


V = TypeVar("V", bound=ViewItem)


def walk_view(items: Iterable[V]) -> list[V]:
    """The records a reader uses, oldest first: walking back from the highest seq, the
    compacted record ending there that covers the most, else the index record there,
    until seq 0 is covered or a seq has neither (docs/FORMAT.md section 5)."""
    compacted: dict[int, V] = {}
    index: dict[int, V] = {}
    for item in items:
        if item.compacted:
            best = compacted.get(item.seq)
            if best is None or item.first_seq < best.first_seq:
                compacted[item.seq] = item
        else:
            index[item.seq] = item
    view: list[V] = []
    seq = max([*compacted, *index], default=-1)
    while seq >= 0:
        item = compacted.get(seq) or index.get(seq)
        if item is None:
            break
        view.append(item)
        seq = item.first_seq - 1
    view.reverse()
    return view


class GenerationIndex:
    """Everything a generation's records say, validated. Immutable after construction."""

    __slots__ = (
        "_segment_starts",
        "compacted_seq",
        "generation",
        "page_size",
        "reason",
        "records",
        "segments",
        "snapshots",
    )

    def __init__(self, generation: str, records: list[IndexRecord]) -> None:
        """Use :meth:`from_records`; *records* here must already be the view."""
        self.generation = generation
        self.records = tuple(records)
        self.snapshots: tuple[SnapshotEntry, ...] = tuple(
            snapshot for record in records for snapshot in record.snapshots
        )
        self.segments: tuple[SegmentEntry, ...] = tuple(
            segment for record in records for segment in record.segments
        )
        self.compacted_seq = records[0].seq if records and records[0].compacted else None
        self.reason = records[0].reason if records else None
        self.page_size = self.snapshots[0].page_size if self.snapshots else 0
        self._segment_starts = [segment.first_txid for segment in self.segments]

    @classmethod
    def from_records(cls, generation: str, records: Iterable[IndexRecord]) -> GenerationIndex:
        """Select the view of *records* (see :func:`walk_view`) and validate it."""
        validate_generation(generation)
        records = list(records)
        for record in records:
            if record.generation != generation:
                raise ReplicaFormatError(
                    f"generation {generation}: record {record.seq} names generation "
                    f"{record.generation}"
                )
        view = walk_view(records)
        index = cls(generation, view)
        index._validate()
        return index

    def _fail(self, problem: str) -> ReplicaFormatError:
        return ReplicaFormatError(f"generation {self.generation}: {problem}")

    def _validate(self) -> None:
        if not self.records:
            raise self._fail("has no index records")
        first = self.records[0]
        if first.first_seq != 0 and not first.compacted:
            raise self._fail(f"index record {first.first_seq - 1} is missing")
        expected_seq = first.first_seq
        for record in self.records:
            if record.first_seq != expected_seq:
                raise self._fail(
                    f"index record {expected_seq} is missing (next is {record.first_seq})"
                )
            expected_seq = record.seq + 1
        if not self.records[0].snapshots:
            raise self._fail(
                f"record {self.records[0].seq} opens the generation without a snapshot"
            )
        next_txid = check_contiguous(self.generation, self.segments, self.snapshots[0].txid + 1)
        for segment in self.segments:
            if segment.page_size != self.page_size:
                raise self._fail(
                    f"segment {segment.digest[:12]} has page size {segment.page_size}, "
                    f"generation has {self.page_size}"
                )
        last_txid = next_txid - 1
        previous = self.snapshots[0].txid
        for snapshot in self.snapshots:
            if not previous <= snapshot.txid <= last_txid:
                raise self._fail(
                    f"snapshot {snapshot.manifest_digest[:12]} at txid {snapshot.txid} is out of "
                    f"order or beyond the last txid {last_txid}"
                )
            if snapshot.page_size != self.page_size:
                raise self._fail(
                    f"snapshot {snapshot.manifest_digest[:12]} has page size "
                    f"{snapshot.page_size}, generation has {self.page_size}"
                )
            previous = snapshot.txid

    # -- restore points -------------------------------------------------------

    @property
    def first_txid(self) -> int:
        """The earliest restore point: the first snapshot's txid."""
        return self.snapshots[0].txid

    @property
    def last_txid(self) -> int:
        """The latest restore point."""
        return self.segments[-1].last_txid if self.segments else self.snapshots[0].txid

    @property
    def first_commit_time_us(self) -> int:
        return self.commit_time_us(self.first_txid)

    @property
    def last_commit_time_us(self) -> int:
        return self.commit_time_us(self.last_txid)

    @property
    def next_seq(self) -> int:
        """The seq the next index record of this generation must use."""
        return self.records[-1].seq + 1

    @property
    def last_seq(self) -> int:
        return self.records[-1].seq

    @property
    def created_ms(self) -> int:
        """Creation time from the generation id (ms since the Unix epoch)."""
        return parse_generation_time_ms(self.generation)

    @property
    def stored_bytes(self) -> int:
        """What restoring every snapshot and segment of the view would download."""
        return sum(entry.stored_bytes for entry in self.snapshots) + sum(
            entry.stored_bytes for entry in self.segments
        )

    def __contains__(self, txid: object) -> bool:
        return type(txid) is int and self.first_txid <= txid <= self.last_txid

    def segment_for(self, txid: int) -> SegmentEntry:
        """The segment holding transaction *txid* (ValueError if none does)."""
        position = bisect_right(self._segment_starts, txid) - 1
        if position >= 0:
            segment = self.segments[position]
            if segment.first_txid <= txid <= segment.last_txid:
                return segment
        raise ValueError(f"txid {txid} is in no segment of generation {self.generation}")

    def commit_time_us(self, txid: int) -> int:
        """Commit time of restore point *txid* (ValueError outside the generation;
        DetailNeeded inside a segment without its detail)."""
        self._require(txid)
        if txid == self.first_txid:
            return self.snapshots[0].time_us
        segment = self.segment_for(txid)
        if txid == segment.last_txid:
            return segment.last_time_us
        if txid == segment.first_txid:
            return segment.first_time_us
        return self._detail(segment).times_us[txid - segment.first_txid]

    def db_size_pages(self, txid: int) -> int:
        """Database size (pages) after transaction *txid* (DetailNeeded as above)."""
        self._require(txid)
        if txid == self.first_txid:
            return self.snapshots[0].page_count
        segment = self.segment_for(txid)
        if txid == segment.last_txid:
            return segment.db_pages
        return self._detail(segment).db_pages[txid - segment.first_txid]

    def _detail(self, segment: SegmentEntry) -> SegmentDetail:
        if segment.detail is None:
            raise DetailNeeded(self.generation, segment)
        return segment.detail

    def with_detail(self, entry: SegmentEntry, detail: SegmentDetail) -> GenerationIndex:
        """This index with *detail* attached to segment *entry* (ValueError when it
        disagrees with the entry's summary)."""
        clone = object.__new__(GenerationIndex)
        for name in GenerationIndex.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.segments = tuple(
            segment.with_detail(detail)
            if (segment.digest, segment.first_txid) == (entry.digest, entry.first_txid)
            else segment
            for segment in self.segments
        )
        return clone

    def is_segment_boundary(self, txid: int) -> bool:
        """Whether no segment straddles *txid* (the view could start at a snapshot there)."""
        if txid == self.first_txid or txid == self.last_txid:
            return txid in self
        position = bisect_right(self._segment_starts, txid + 1) - 1
        return position >= 0 and self.segments[position].first_txid == txid + 1

    def snapshot_at_or_before(self, txid: int) -> SnapshotEntry:
        """The latest snapshot a restore to *txid* can start from."""
        self._require(txid)
        best = self.snapshots[0]
        for snapshot in self.snapshots:
            if snapshot.txid > txid:
                break
            best = snapshot
        return best

    def segments_between(self, after_txid: int, through_txid: int) -> list[SegmentEntry]:
        """Segments holding transactions ``after_txid + 1 .. through_txid`` (the first and
        last may hold more; the restore stops at the exact txid)."""
        if after_txid >= through_txid:
            return []
        self._require(after_txid)
        self._require(through_txid)
        start = bisect_right(self._segment_starts, after_txid + 1) - 1
        stop = bisect_right(self._segment_starts, through_txid)
        return list(self.segments[max(start, 0) : stop])

    def object_digests(self) -> set[str]:
        """Every content-addressed object the view names directly (segments and
        snapshot manifests; chunks are named by the manifests)."""
        return {entry.digest for entry in self.segments} | {
            entry.manifest_digest for entry in self.snapshots
        }

    def _require(self, txid: int) -> None:
        if txid not in self:
            raise ValueError(
                f"txid {txid} is not a restore point of generation {self.generation} "
                f"({self.first_txid}..{self.last_txid})"
            )


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    """A summary of one generation, for ``litetool generations`` and status."""

    generation: str
    created_ms: int
    first_txid: int
    last_txid: int
    first_commit_time_us: int
    last_commit_time_us: int
    record_count: int
    next_seq: int
    stored_bytes: int
    reason: str | None

    @classmethod
    def from_index(cls, index: GenerationIndex, record_count: int) -> GenerationInfo:
        """*record_count*: how many record objects the generation has in the store."""
        return cls(
            generation=index.generation,
            created_ms=index.created_ms,
            first_txid=index.first_txid,
            last_txid=index.last_txid,
            first_commit_time_us=index.first_commit_time_us,
            last_commit_time_us=index.last_commit_time_us,
            record_count=record_count,
            next_seq=index.next_seq,
            stored_bytes=index.stored_bytes,
            reason=index.reason,
        )


# -- compaction ---------------------------------------------------------------------------


def plan_compaction(
    records: Sequence[IndexRecord],
    *,
    writer: str,
    created_us: int,
    max_entries: int = MAX_COMPACTED_ENTRIES,
) -> list[IndexRecord]:
    """The compacted records that stand for *records*, oldest first (docs/FORMAT.md
    section 5, "How litetool compacts").

    *records* is the end of a view: its last compacted record, if any, then every
    index record after it, consecutive. The index records are split into runs at
    the records that name a snapshot; the first run joins the compacted record
    before it when it names no snapshot and both hold at most *max_entries*
    entries together; every other run becomes a compacted record of its own.
    """
    if not records:
        return []
    for before, after in pairwise(records):
        if after.compacted or after.first_seq != before.seq + 1:
            raise ValueError(f"records {before.seq} and {after.first_seq} do not follow each other")
    head = records[0] if records[0].compacted else None
    tail = list(records[1:] if head is not None else records)
    reason = records[0].reason
    runs: list[list[IndexRecord]] = []
    for record in tail:
        if not runs or record.snapshots:
            runs.append([record])
        else:
            runs[-1].append(record)
    planned: list[IndexRecord] = []
    for number, run in enumerate(runs):
        group = run
        if (
            number == 0
            and head is not None
            and not run[0].snapshots
            and head.entry_count + sum(record.entry_count for record in run) <= max_entries
        ):
            group = [head, *run]
        planned.append(
            IndexRecord(
                generation=group[0].generation,
                seq=group[-1].seq,
                created_us=created_us,
                writer=writer,
                snapshots=tuple(entry for record in group for entry in record.snapshots),
                segments=tuple(entry for record in group for entry in record.segments),
                reason=reason,
                covers=(group[0].first_seq, group[-1].seq),
            )
        )
    return planned
