"""A consistent image of the live database at a captured txid, read in chunks.

Opened by the capture thread under SQLite's write lock, right after capturing
the tail of the WAL, so the image is exactly the state after txid ``txid``.
A dedicated read transaction (begun at that moment) then keeps it readable
without blocking the application:

- if the WAL was fully checkpointed, the reader sits on slot 0 and no
  checkpoint can write the database file: the file alone is the image;
- otherwise the reader's mark keeps every frame up to ``txid`` in place and
  keeps checkpoints from writing newer pages into the file, so the image is
  the file overlaid with the latest WAL frame of each page up to ``txid``.

Nothing is copied up front: ``read_chunk`` reads one chunk's pages on demand,
so memory stays at one chunk whatever the database size.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from litetool.engine.capture.fence import ReadFence
from litetool.wal.header import (
    WAL_HEADER_SIZE,
    frame_offset,
    frame_page_numbers,
    frames_between,
    frames_read_size,
    page_offset,
)
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index


class SnapshotSource:
    """Reads the image of the database as of ``txid``; close it when done."""

    def __init__(
        self,
        *,
        fence: ReadFence,
        reader: sqlite3.Connection,
        txid: int,
        time_us: int,
        page_size: int,
        page_count: int,
        wal_end_offset: int,
    ) -> None:
        self.db_path = fence.path
        self.txid = txid
        self.time_us = time_us
        self.page_size = page_size
        self.page_count = page_count
        self._reader = reader
        self._fence = fence
        self._db_fd = fence.raw_fd("db")
        self._wal_fd = fence.raw_fd("wal")
        self._overlay_pages: list[int] = []
        self._overlay: dict[int, int] = {}
        if wal_end_offset > WAL_HEADER_SIZE and not self._wal_fully_checkpointed(wal_end_offset):
            self._load_overlay(wal_end_offset)

    @property
    def size_bytes(self) -> int:
        return self.page_count * self.page_size

    def chunk_count(self, chunk_size: int) -> int:
        return -(-self.size_bytes // chunk_size)

    def read_chunk(self, index: int, chunk_size: int) -> bytes:
        """Bytes ``[index * chunk_size, ...)`` of the image (the last chunk is short)."""
        start = index * chunk_size
        end = min(start + chunk_size, self.size_bytes)
        data = os.pread(self._db_fd, end - start, start)
        if len(data) < end - start:
            data += bytes(end - start - len(data))  # pages only in the WAL so far
        if not self._overlay:
            return data
        # The pages the chunk touches (a chunk need not be whole pages).
        first_page = start // self.page_size + 1
        last_page = -(-end // self.page_size)
        buf = None
        for page_number in self._pages_between(first_page, last_page):
            if buf is None:
                buf = bytearray(data)
            frame_at = self._overlay[page_number]
            page_start = (page_number - 1) * self.page_size
            low, high = max(page_start, start), min(page_start + self.page_size, end)
            page = os.pread(self._wal_fd, self.page_size, page_offset(frame_at))
            buf[low - start : high - start] = page[low - page_start : high - page_start]
        return bytes(buf) if buf is not None else data

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._reader.in_transaction:
                self._reader.execute("COMMIT")
            self._reader.close()

    def __enter__(self) -> SnapshotSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------

    def _pages_between(self, first: int, last: int) -> list[int]:
        import bisect

        lo = bisect.bisect_left(self._overlay_pages, first)
        hi = bisect.bisect_right(self._overlay_pages, last)
        return self._overlay_pages[lo:hi]

    def _wal_fully_checkpointed(self, wal_end_offset: int) -> bool:
        frames = frames_between(WAL_HEADER_SIZE, wal_end_offset, self.page_size)
        shm_fd = self._fence.raw_fd("shm")
        if shm_fd < 0:
            return False
        index = parse_wal_index(os.pread(shm_fd, WAL_INDEX_READ_SIZE, 0))
        if index is None:
            return False
        return index.mx_frame == frames and index.fully_backfilled

    def _load_overlay(self, wal_end_offset: int) -> None:
        overlay: dict[int, int] = {}
        step = frames_read_size(8 << 20, self.page_size)
        offset = WAL_HEADER_SIZE
        while offset < wal_end_offset:
            length = min(step, wal_end_offset - offset)
            buf = os.pread(self._wal_fd, length, offset)
            numbers = frame_page_numbers(buf, self.page_size)
            for i, page_number in enumerate(numbers.tolist()):
                overlay[page_number] = frame_offset(i, self.page_size, offset)
            count = len(numbers)
            offset = frame_offset(count, self.page_size, offset)
            if count == 0:
                break
        self._overlay = {p: o for p, o in overlay.items() if p <= self.page_count}
        self._overlay_pages = sorted(self._overlay)
