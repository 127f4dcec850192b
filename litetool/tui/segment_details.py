"""Fetching segments for the timeline: what is in flight, what failed, and the fetch.

A generation opens from its index records alone (segment summaries); the
timeline fetches a segment only when a row on screen, the picked point or a
"go to a time" needs a value inside it. :class:`DetailRequests` is the
restore point browser's bookkeeping for one shown generation (single-threaded:
the app's event loop); :func:`fetch_segment_details` is the I/O, run in a worker. No
textual here.
"""

from __future__ import annotations

from collections.abc import Iterable

from litetool.storage import Replica, SegmentDetail, SegmentEntry
from litetool.storage.concurrency import gather_limited
from litetool.tui.display import format_bytes
from litetool.wording import plural

SegmentKey = tuple[str, int]  # (digest, first_txid): one segment of one generation


def segment_key(entry: SegmentEntry) -> SegmentKey:
    return entry.digest, entry.first_txid


def describe_segments(entries: Iterable[SegmentEntry]) -> str:
    """``2 segments (txids 41..70, 6.1 KiB)``."""
    entries = list(entries)
    count = plural(len(entries), "segment")
    first = min(entry.first_txid for entry in entries)
    last = max(entry.last_txid for entry in entries)
    stored = format_bytes(sum(entry.stored_bytes for entry in entries))
    return f"{count} (txids {first}..{last}, {stored})"


class DetailRequests:
    """Segments being fetched, segments whose fetch failed (not fetched again for the
    rows on screen; "go to a time" may retry), the last failure as one line, and a
    "go to a time" instant waiting for a segment."""

    def __init__(self) -> None:
        self.fetching: dict[SegmentKey, SegmentEntry] = {}
        self.failed: set[SegmentKey] = set()
        self.error: str | None = None
        self.goto_time_us: int | None = None

    def clear(self) -> None:
        self.fetching.clear()
        self.failed.clear()
        self.error = None
        self.goto_time_us = None

    @property
    def idle(self) -> bool:
        return not self.fetching

    def start(self, entries: Iterable[SegmentEntry], *, retry: bool = False) -> list[SegmentEntry]:
        """Mark those of *entries* that are neither being fetched nor (unless *retry*)
        failed before as being fetched, and return them (fetch them next)."""
        new: dict[SegmentKey, SegmentEntry] = {}
        for entry in entries:
            key = segment_key(entry)
            if key in self.fetching or (key in self.failed and not retry):
                continue
            self.failed.discard(key)
            new[key] = entry
        self.fetching.update(new)
        return list(new.values())

    def finish(
        self, fetched: Iterable[SegmentEntry], failed: Iterable[SegmentEntry], error: str | None
    ) -> None:
        """A fetch ended: *fetched* arrived, *failed* did not (*error* says why)."""
        for entry in fetched:
            self.fetching.pop(segment_key(entry), None)
        for entry in failed:
            self.fetching.pop(segment_key(entry), None)
            self.failed.add(segment_key(entry))
        self.error = error

    def has_failed(self, entry: SegmentEntry) -> bool:
        return segment_key(entry) in self.failed

    def describe(self) -> str:
        """What is in flight, for the status line ("" when nothing is)."""
        if not self.fetching:
            return ""
        return f"fetching {describe_segments(self.fetching.values())} for commit times and sizes…"


async def fetch_segment_details(
    replica: Replica, entries: list[SegmentEntry]
) -> tuple[list[tuple[SegmentEntry, SegmentDetail]], list[tuple[SegmentEntry, Exception]]]:
    """Fetch *entries* from *replica* in parallel (at most ``replica.concurrency`` at
    once), each verified against its summary (``Replica.fetch_detail``). Returns the
    details that arrived and the failures, each in the order of *entries*."""

    async def attempt(entry: SegmentEntry) -> SegmentDetail | Exception:
        try:
            return await replica.fetch_detail(entry)
        except Exception as exc:  # reported per segment; the others still count
            return exc

    results = await gather_limited(
        ((lambda entry=entry: attempt(entry)) for entry in entries), replica.concurrency
    )
    details: list[tuple[SegmentEntry, SegmentDetail]] = []
    failures: list[tuple[SegmentEntry, Exception]] = []
    for entry, result in zip(entries, results, strict=True):
        if isinstance(result, Exception):
            failures.append((entry, result))
        else:
            details.append((entry, result))
    return details, failures
