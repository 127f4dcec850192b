"""Page digests: a local, file-backed digest of every page of the replicated image.

The table holds one 16-byte digest (XXH3-128 of the page) per page of
the database image at one captured txid of one generation: the state a
restore of that txid produces. It is what lets litetool prove, after any stop
or crash, that the live database file still is that image (see
``litetool.engine.continuity.continuity`` and "Why nothing is lost while litetool is
down" in docs/ARCHITECTURE.md) without downloading anything.

It is built once per generation from a consistent image (``build``), then
moved forward in the background from the spooled frames (``advance``): only
the newest version of each page a batch of transactions wrote is hashed, so
the cost follows the distinct pages written, not the WAL bytes. The spool
keeps the transactions after the table's txid (it is one of the spool's trim
floors), so the table can always be brought to the captured txid.

File ``pages`` in the spool directory (integers little-endian)::

    offset size  field
    0      4     magic b"LTPD"
    4      4     format (1)
    8      16    generation id (ASCII, NUL-padded)
    24     8     txid the digests describe, plus one (0: not complete yet)
    32     4     page size
    36     4     page count at that txid
    40     4     CRC-32 of bytes 0..40
    44     20    zero
    64     16*N  digest of page 1, 2, ... (capacity N >= page count)

Entries are written through a shared memory map, the header last and after
the entries were flushed. A crash between the two leaves entries that are
either as of the header's txid or newer versions of pages the spool still
holds after it; moving forward from the header's txid rewrites them all, so
the table is exact again (writes of one page's digest are idempotent).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xxhash

from litetool.errors import DatabaseError
from litetool.wal.header import (
    frame_grid,
    frame_offset,
    frame_size,
    frames_per_read,
    grid_page_numbers,
    page_offset,
)

MAGIC = b"LTPD"
FORMAT = 1
HEADER_SIZE = 64
DIGEST_SIZE = 16
# Digests as numpy values: two little-endian u64 per page (the XXH3-128 bytes).
DIGEST_DTYPE = np.dtype([("lo", "<u8"), ("hi", "<u8")])
_HEADER = struct.Struct("<4sI16sQII")
_CRC_END = _HEADER.size  # 40
FILE_NAME = "pages"
# Reads of the spool and the database go in pieces of about this size.
READ_BYTES = 8 << 20


def page_digest(page: bytes | bytearray | memoryview) -> bytes:
    """The digest of one page: its 128-bit XXH3 hash (16 bytes).

    XXH3 is not a cryptographic hash; it is here to tell pages apart that
    differ by accident (an application's writes, an older copy, another
    database), at about 5 GB/s. Two different pages share a digest with a
    probability of about 2**-128.
    """
    return xxhash.xxh3_128_digest(page)


def digest_pages(data: bytes | bytearray | memoryview, page_size: int) -> np.ndarray:
    """Digests of the whole pages in ``data``, in order (``DIGEST_DTYPE``)."""
    view = memoryview(data).cast("B")
    count = len(view) // page_size
    digest = xxhash.xxh3_128_digest
    joined = b"".join([digest(view[i * page_size : (i + 1) * page_size]) for i in range(count)])
    return np.frombuffer(joined, dtype=DIGEST_DTYPE)


def zero_page_digest(page_size: int) -> bytes:
    return page_digest(bytes(page_size))


class PageDigests:
    """The digest table of one generation's image at ``txid``."""

    def __init__(
        self, path: Path, fd: int, generation: str, txid: int, page_size: int, page_count: int
    ) -> None:
        self.path = path
        self._fd = fd
        self.generation = generation
        self.txid = txid
        self.page_size = page_size
        self.page_count = page_count
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._map_capacity(max(page_count, 1))

    # -- opening -------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, generation: str, page_size: int) -> PageDigests:
        """A new, empty table (txid -1: not valid until its first ``commit``)."""
        path = directory / FILE_NAME
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.replace(tmp, path)
        except OSError:
            os.close(fd)
            raise
        table = cls(path, fd, generation, -1, page_size, 0)
        table._write_header()
        return table

    @classmethod
    def open(cls, directory: Path) -> tuple[PageDigests | None, str]:
        """The saved table, or None and why there is none usable."""
        path = directory / FILE_NAME
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None, "no page digests were saved"
        except OSError as exc:
            return None, f"the page digests cannot be read: {exc.strerror}"
        try:
            head = os.pread(fd, HEADER_SIZE, 0)
            fields = _decode_header(head)
            if fields is None:
                os.close(fd)
                return None, "the saved page digests are damaged"
            generation, txid, page_size, page_count = fields
            size = os.fstat(fd).st_size
            if txid < 0 or size < HEADER_SIZE + page_count * DIGEST_SIZE:
                os.close(fd)
                return None, "the saved page digests are incomplete"
            return cls(path, fd, generation, txid, page_size, page_count), ""
        except OSError as exc:
            os.close(fd)
            return None, f"the page digests cannot be read: {exc.strerror}"

    def close(self) -> None:
        self._unmap()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    # -- entries -------------------------------------------------------------------

    def entries(self) -> np.ndarray:
        """The digests of pages 1..page_count (a view: do not keep it across writes)."""
        assert self._map is not None
        return np.frombuffer(
            self._map, dtype=DIGEST_DTYPE, count=self.page_count, offset=HEADER_SIZE
        )

    def set_pages(self, page_numbers: np.ndarray, digests: np.ndarray) -> None:
        """Set the digests of some pages (1-based numbers; a later duplicate wins)."""
        if len(page_numbers) == 0:
            return
        top = int(page_numbers.max())
        if top > self._capacity:
            self._map_capacity(max(top, 2 * self._capacity))
        assert self._map is not None
        view = np.frombuffer(
            self._map, dtype=DIGEST_DTYPE, count=self._capacity, offset=HEADER_SIZE
        )
        # Fancy assignment keeps the last of duplicate indices only when they
        # are unique: keep the last occurrence of each page explicitly.
        reversed_numbers = page_numbers[::-1]
        unique, first_in_reversed = np.unique(reversed_numbers, return_index=True)
        last = len(page_numbers) - 1 - first_in_reversed
        view[unique - 1] = digests[last]
        del view

    def set_range(self, first_page: int, digests: np.ndarray) -> None:
        """Set the digests of pages first_page, first_page + 1, ..."""
        end = first_page - 1 + len(digests)
        if end > self._capacity:
            self._map_capacity(max(end, 2 * self._capacity))
        assert self._map is not None
        view = np.frombuffer(
            self._map, dtype=DIGEST_DTYPE, count=self._capacity, offset=HEADER_SIZE
        )
        view[first_page - 1 : end] = digests
        del view

    def commit(self, txid: int, page_count: int) -> None:
        """Make the entries durable, then record that they describe ``txid``."""
        if page_count > self._capacity:
            self._map_capacity(page_count)
        if self._map is not None:
            self._map.flush()
        self.txid = txid
        self.page_count = page_count
        self._write_header()
        os.fdatasync(self._fd)

    # -- internals -----------------------------------------------------------------

    def _write_header(self) -> None:
        os.pwrite(
            self._fd, _encode_header(self.generation, self.txid, self.page_size, self.page_count), 0
        )

    def _unmap(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None

    def _map_capacity(self, pages: int) -> None:
        pages = max(pages, 1024)
        size = HEADER_SIZE + pages * DIGEST_SIZE
        self._unmap()
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._capacity = pages


def _encode_header(generation: str, txid: int, page_size: int, page_count: int) -> bytes:
    raw = _HEADER.pack(
        MAGIC, FORMAT, generation.encode("ascii")[:16], txid + 1, page_size, page_count
    )
    crc = zlib.crc32(raw)
    return raw + crc.to_bytes(4, "little") + bytes(HEADER_SIZE - len(raw) - 4)


def _decode_header(head: bytes) -> tuple[str, int, int, int] | None:
    if len(head) < HEADER_SIZE:
        return None
    raw = head[:_CRC_END]
    if zlib.crc32(raw) != int.from_bytes(head[_CRC_END : _CRC_END + 4], "little"):
        return None
    magic, version, generation, txid_plus_one, page_size, page_count = _HEADER.unpack(raw)
    if magic != MAGIC or version != FORMAT:
        return None
    txid = txid_plus_one - 1
    try:
        name = generation.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        return None
    return name, txid, page_size, page_count


# -- reading frames ---------------------------------------------------------------------


def digest_frames(
    sources: Iterable[tuple[int, int, int]], page_size: int, page_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """(page numbers, digests) of the newest version of each page among runs of
    WAL frames, pages past ``page_count`` left out; a page may come more than
    once, the later entry being the newer (``PageDigests.set_pages`` keeps it).

    ``sources`` are (open fd, file offset of the first frame, frame count), in
    commit order. They are mapped a piece of about ``READ_BYTES`` at a time,
    not copied: only the frame headers (for the page numbers) and the newest
    version of each page in the piece are touched, so the cost follows the
    distinct pages written, and memory stays at one piece.
    """
    stride = frame_size(page_size)
    step = frames_per_read(READ_BYTES, page_size)
    granularity = mmap.ALLOCATIONGRANULARITY
    digest = xxhash.xxh3_128_digest
    numbers_out: list[np.ndarray] = []
    digests_out: list[np.ndarray] = []
    for fd, offset, count in sources:
        size = os.fstat(fd).st_size
        done = 0
        while done < count:
            n = min(step, count - done)
            start = frame_offset(done, page_size, offset)
            end = frame_offset(n, page_size, start)
            if size < end:
                raise DatabaseError(f"frames end early at offset {start}")
            base = start - start % granularity
            mapped = mmap.mmap(fd, end - base, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)
            try:
                grid = frame_grid(mapped, page_size, n, offset=start - base)
                numbers = grid_page_numbers(grid).astype(np.int64)
                del grid
                unique, first_reversed = np.unique(numbers[::-1], return_index=True)
                rows = n - 1 - first_reversed
                keep = unique <= page_count
                unique, rows = unique[keep], rows[keep]
                view = memoryview(mapped)
                at = page_offset(start - base)  # the first frame's page; frames are stride apart
                joined = b"".join(
                    [
                        digest(view[at + r * stride : at + r * stride + page_size])
                        for r in rows.tolist()
                    ]
                )
                view.release()
            finally:
                mapped.close()
            numbers_out.append(unique)
            digests_out.append(np.frombuffer(joined, dtype=DIGEST_DTYPE))
            done += n
    if not numbers_out:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=DIGEST_DTYPE)
    return np.concatenate(numbers_out), np.concatenate(digests_out)


def build_digests(table: PageDigests, source, stop=None) -> bool:
    """Digest every page of ``source`` (a ``SnapshotSource``) into ``table`` and
    commit it at the source's txid; False when ``stop`` (an Event) was set first."""
    page_size = source.page_size
    chunk = max(1, READ_BYTES // page_size) * page_size
    per_chunk = chunk // page_size
    for index in range(source.chunk_count(chunk)):
        if stop is not None and stop.is_set():
            return False
        data = source.read_chunk(index, chunk)
        table.set_range(index * per_chunk + 1, digest_pages(data, page_size))
    table.commit(source.txid, source.page_count)
    return True
