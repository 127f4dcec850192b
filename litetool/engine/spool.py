"""The local spool: committed transactions kept durably until every replica has them.

Layout of the spool directory (default ``.<db name>-litetool`` beside the
database)::

    state.json                 current generation (written atomically)
    log/<first txid>.spool     append-only files of spool records

A spool record holds one captured batch of whole transactions: a segment
payload (``litetool.storage`` segment codec) plus the WAL position after it,
so that the capture position is recovered from the log itself after a crash
and one fsync per batch makes a batch durable::

    offset size  field
    0      4     magic b"LTSR"
    4      4     body length (u32, big-endian)
    8      4     CRC-32 of the body
    12     8     first txid                       -- body starts here
    20     8     last txid
    28     8     commit time of the last txid (us)
    36     32    header of the WAL the frames came from
    68     8     WAL offset after the last frame of the batch
    76     4     checksum s0 at that offset
    80     4     checksum s1 at that offset
    84     4     database size in pages after the last txid
    88     ...   segment payload

A torn record at the end of the last file (a crash mid-append) fails its
length or CRC check and is cut off on open; everything before it stands.
Files are rotated at ``ROTATE_BYTES`` and deleted once every replica has
published past their last txid.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from litetool.errors import DatabaseError

MAGIC = b"LTSR"
_PREFIX = struct.Struct(">4sII")
_BODY_HEADER = struct.Struct(">QQQ32sQIII")
BODY_HEADER_SIZE = _BODY_HEADER.size
ROTATE_BYTES = 64 * 1024 * 1024
_MAX_RECORD = 1 << 31


@dataclass(frozen=True, slots=True)
class WalPosition:
    """Where capture stands in the live WAL: after a commit frame."""

    header: bytes  # the 32-byte WAL header
    offset: int  # byte offset after the last captured frame
    checksum: tuple[int, int]


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    first_txid: int
    last_txid: int
    last_time_us: int
    position: WalPosition
    db_size_pages: int
    payload: bytes


@dataclass(slots=True)
class _SpoolFile:
    path: Path
    first_txid: int
    last_txid: int
    size: int
    # (last txid, byte offset, byte length) of each record, in order
    extents: list[tuple[int, int, int]]


def encode_record(record: SpoolRecord) -> bytes:
    body = (
        _BODY_HEADER.pack(
            record.first_txid,
            record.last_txid,
            record.last_time_us,
            record.position.header,
            record.position.offset,
            record.position.checksum[0],
            record.position.checksum[1],
            record.db_size_pages,
        )
        + record.payload
    )
    return _PREFIX.pack(MAGIC, len(body), zlib.crc32(body)) + body


def decode_records(data: bytes) -> tuple[list[SpoolRecord], int]:
    """Every whole, valid record from the start of ``data``, and where they end."""
    records, _, end = _decode_with_extents(data)
    return records, end


def _decode_with_extents(
    data: bytes,
) -> tuple[list[SpoolRecord], list[tuple[int, int, int]], int]:
    records: list[SpoolRecord] = []
    extents: list[tuple[int, int, int]] = []
    pos = 0
    view = memoryview(data)
    while pos + _PREFIX.size <= len(data):
        magic, length, crc = _PREFIX.unpack_from(data, pos)
        start = pos + _PREFIX.size
        if magic != MAGIC or length < BODY_HEADER_SIZE or start + length > len(data):
            break
        body = view[start : start + length]
        if zlib.crc32(body) != crc:
            break
        first, last, time_us, header, offset, s0, s1, pages = _BODY_HEADER.unpack_from(body)
        records.append(
            SpoolRecord(
                first,
                last,
                time_us,
                WalPosition(header, offset, (s0, s1)),
                pages,
                bytes(body[BODY_HEADER_SIZE:]),
            )
        )
        extents.append((last, pos, start + length - pos))
        pos = start + length
    return records, extents, pos


class Spool:
    """Durable, bounded storage of captured transactions of one generation."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # Trimming works file by file: rotate often enough to stay near the cap.
        self.rotate_bytes = max(64 << 10, min(ROTATE_BYTES, max_bytes // 8))
        self._log_dir = directory / "log"
        self._files: list[_SpoolFile] = []
        self._fd = -1
        self.last: SpoolRecord | None = None
        # The capture thread appends and trims; replica tasks read from threads.
        self._lock = threading.RLock()

    # -- opening and recovery ---------------------------------------------------

    def open(self) -> dict | None:
        """Create the directories, recover the log; return the saved state."""
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create spool {self.directory}: {exc.strerror}") from None
        state = self._read_json(self.directory / "state.json")
        for path in sorted(self._log_dir.glob("*.spool")):
            data = path.read_bytes()
            records, extents, end = _decode_with_extents(data)
            if end != len(data):
                # A torn append from a crash: keep the whole records only.
                with open(path, "r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
            if not records:
                path.unlink()
                continue
            self._files.append(
                _SpoolFile(path, records[0].first_txid, records[-1].last_txid, end, extents)
            )
            self.last = records[-1]
        return state

    def start_generation(self, state: dict) -> None:
        """Forget every spooled record and record a new generation's state."""
        with self._lock:
            self.close()
            for spool_file in self._files:
                spool_file.path.unlink(missing_ok=True)
            self._files = []
            self.last = None
            self._write_json(self.directory / "state.json", state)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- appending --------------------------------------------------------------

    def append(self, record: SpoolRecord) -> None:
        """Append one batch and fsync it: after this it survives kill -9."""
        with self._lock:
            data = encode_record(record)
            current = self._files[-1] if self._files else None
            if current is None or current.size >= self.rotate_bytes or self._fd < 0:
                if current is None or current.size >= self.rotate_bytes:
                    path = self._log_dir / f"{record.first_txid:016x}.spool"
                    current = _SpoolFile(path, record.first_txid, record.first_txid - 1, 0, [])
                    self._files.append(current)
                self.close()
                self._fd = os.open(current.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                _fsync_dir(self._log_dir)  # the new file's name is durable too
            written = os.write(self._fd, data)
            if written != len(data):
                raise DatabaseError(f"short write to spool {current.path}")
            os.fdatasync(self._fd)
            current.extents.append((record.last_txid, current.size, len(data)))
            current.size += len(data)
            current.last_txid = record.last_txid
            self.last = record

    # -- reading for replicas --------------------------------------------------

    def records_after(self, txid: int, *, max_bytes: int) -> list[SpoolRecord]:
        """Spooled records holding transactions after ``txid``, up to a byte budget.

        The first record returned may start at or before ``txid + 1``; callers
        trim it (records are whole batches).
        """
        with self._lock:
            out: list[SpoolRecord] = []
            budget = 0
            for spool_file in self._files:
                if spool_file.last_txid <= txid:
                    continue
                wanted = [(off, n) for last, off, n in spool_file.extents if last > txid]
                if not wanted:
                    continue
                with open(spool_file.path, "rb") as handle:
                    for offset, length in wanted:
                        handle.seek(offset)
                        records, _ = decode_records(handle.read(length))
                        if len(records) != 1:
                            raise DatabaseError(f"spool file {spool_file.path} is damaged")
                        out.append(records[0])
                        budget += len(records[0].payload)
                        if budget >= max_bytes:
                            return out
            return out

    @property
    def first_txid(self) -> int | None:
        with self._lock:
            return self._files[0].first_txid if self._files else None

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(f.size for f in self._files)

    @property
    def over_cap(self) -> bool:
        return self.size_bytes > self.max_bytes

    def trim(self, acked_txid: int) -> int:
        """Delete files whose transactions every replica has; return bytes freed."""
        with self._lock:
            freed = 0
            while len(self._files) > 1 and self._files[0].last_txid <= acked_txid:
                spool_file = self._files.pop(0)
                spool_file.path.unlink(missing_ok=True)
                freed += spool_file.size
            return freed

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _read_json(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DatabaseError(f"spool file {path} is unreadable: {exc}") from None

    @staticmethod
    def _write_json(path: Path, value: dict) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(value, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
