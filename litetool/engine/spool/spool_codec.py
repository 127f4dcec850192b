"""The spool record codec: one captured batch of whole transactions, as bytes.

Pure: no files, no asyncio, no sqlite3, no object storage (an import
contract holds it to that); the spool's files are ``litetool.engine.spool.spool``.

A spool record holds one captured batch of whole transactions *as raw WAL
frames*, exactly the bytes SQLite wrote, so capture costs one read and one
write per byte and the frames carry their own integrity: SQLite's cumulative
checksum chain, which the record's header pins at both ends::

    offset size  field (integers big-endian)
    0      4     magic b"LTS3"
    4      4     CRC-32 of header bytes 8.. to the end of the time runs
    8      8     first txid
    16     8     last txid
    24     8     commit time of the last txid (us)
    32     32    header of the WAL the frames came from (salts, byte order, page size)
    64     8     WAL offset of the first frame
    72     4     checksum s0 before the first frame
    76     4     checksum s1 before the first frame
    80     8     WAL offset after the last frame
    88     4     checksum s0 after the last frame
    92     4     checksum s1 after the last frame
    96     4     database size in pages after the last txid
    100    4     frame count
    104    4     time runs R
    108    16*R  R x (last txid of the run, 8 bytes; its commit time in us, 8 bytes)
    ...    ...   frame count x (24 + page size) bytes of WAL frames

Commit times come in runs: the transactions up to each run's last txid
(after the previous run's) committed at that run's time; those after the
last run, up to the record's last txid, at the record's time. A batch whose
transactions were all seen at once has no runs (see ``litetool.engine.capture.commit_clock``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

from litetool.errors import WalFormatError
from litetool.wal.header import (
    WAL_HEADER_SIZE,
    frame_offset,
    frame_size,
    parse_wal_header,
    raw_page_size,
)

MAGIC = b"LTS3"
# magic, header CRC, then the CRC-covered fields (the time runs follow)
_HEADER = struct.Struct(">4sIQQQ32sQIIQIIIII")
# The fixed part of a record header; each time run adds RUN_SIZE.
HEADER_SIZE = _HEADER.size
_RUN = struct.Struct(">QQ")
RUN_SIZE = _RUN.size
MAX_RUNS = 1 << 16
_CRC_FROM = 8
_MAX_FRAMES = 1 << 31

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class WalPosition:
    """A point in the live WAL just after a commit frame (or the header)."""

    header: bytes  # the 32-byte WAL header
    offset: int  # byte offset after the last captured frame
    checksum: tuple[int, int]


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One captured batch: whole transactions ``first_txid..last_txid``.

    ``frames`` are the raw WAL frames between ``start`` and ``position``
    (empty in ``Spool.last``, which keeps only where capture stands).
    """

    first_txid: int
    last_txid: int
    last_time_us: int
    start: WalPosition
    position: WalPosition
    db_size_pages: int
    frame_count: int
    frames: Buffer = b""
    # Earlier commit times: (last txid of the run, time in us), in order,
    # each run ending before ``last_txid`` (see the module docstring).
    time_runs: tuple[tuple[int, int], ...] = ()

    @property
    def page_size(self) -> int:
        # The WAL header was checked when captured and when read back; no
        # need to parse it again per append.
        return raw_page_size(self.position.header)

    @property
    def frames_bytes(self) -> int:
        return self.frame_count * frame_size(self.page_size)

    @property
    def header_size(self) -> int:
        return HEADER_SIZE + RUN_SIZE * len(self.time_runs)

    def commit_times(self) -> list[int]:
        """The commit time of each transaction, first to last txid."""
        times: list[int] = []
        txid = self.first_txid
        for last, time_us in self.time_runs:
            times.extend([time_us] * (last - txid + 1))
            txid = last + 1
        times.extend([self.last_time_us] * (self.last_txid - txid + 1))
        return times


def encode_header(record: SpoolRecord) -> bytes:
    """The record header (108 bytes and the time runs); the frames follow it."""
    if record.start.header != record.position.header:
        raise ValueError("a spool record's frames come from one WAL")
    if not _runs_are_valid(record):
        raise ValueError("a spool record's time runs do not fit its txids and time")
    fields = _HEADER.pack(
        MAGIC,
        0,
        record.first_txid,
        record.last_txid,
        record.last_time_us,
        record.position.header,
        record.start.offset,
        record.start.checksum[0],
        record.start.checksum[1],
        record.position.offset,
        record.position.checksum[0],
        record.position.checksum[1],
        record.db_size_pages,
        record.frame_count,
        len(record.time_runs),
    )
    fields += b"".join(_RUN.pack(last, time_us) for last, time_us in record.time_runs)
    crc = zlib.crc32(memoryview(fields)[_CRC_FROM:])
    return fields[:4] + crc.to_bytes(4, "big") + fields[_CRC_FROM:]


def _runs_are_valid(record: SpoolRecord) -> bool:
    """Runs end at increasing txids before the last, at non-decreasing times
    up to the record's time."""
    txid, time_us = record.first_txid - 1, -1
    for last, at in record.time_runs:
        if not txid < last < record.last_txid or at < time_us:
            return False
        txid, time_us = last, at
    return time_us <= record.last_time_us


def encode_record(record: SpoolRecord) -> bytes:
    """Header + frames (tests and tools; the spool writes both without joining)."""
    return encode_header(record) + bytes(record.frames)


def decode_header(data: Buffer, pos: int) -> SpoolRecord | None:
    """The record header at ``pos`` (frames not attached), or None if it is not
    one (or it is cut off: pass at least ``header_size`` bytes)."""
    if pos + HEADER_SIZE > len(data):
        return None
    view = memoryview(data)[pos : pos + HEADER_SIZE]
    (magic, crc, first, last, time_us, header, start_offset, s0, s1, end_offset, e0, e1,
     pages, frame_count, runs) = _HEADER.unpack(view)  # fmt: skip
    if magic != MAGIC or runs > MAX_RUNS:
        return None
    end = pos + HEADER_SIZE + runs * RUN_SIZE
    if end > len(data):
        return None
    whole = memoryview(data)[pos:end]
    if zlib.crc32(whole[_CRC_FROM:]) != crc:
        return None
    if frame_count == 0 or frame_count > _MAX_FRAMES or last < first:
        return None
    try:
        parsed = parse_wal_header(header)
    except WalFormatError:
        return None
    ends_at = frame_offset(frame_count, parsed.page_size, start_offset)
    if end_offset != ends_at or start_offset < WAL_HEADER_SIZE:
        return None
    time_runs = tuple(_RUN.unpack_from(whole, HEADER_SIZE + i * RUN_SIZE) for i in range(runs))
    record = SpoolRecord(
        first,
        last,
        time_us,
        WalPosition(header, start_offset, (s0, s1)),
        WalPosition(header, end_offset, (e0, e1)),
        pages,
        frame_count,
        time_runs=time_runs,
    )
    return record if _runs_are_valid(record) else None


def runs_in_header(head: Buffer) -> int:
    """How many time runs a record header announces (0 if it is too short)."""
    if len(head) < HEADER_SIZE:
        return 0
    return int.from_bytes(bytes(head[HEADER_SIZE - 4 : HEADER_SIZE]), "big")


def frames_are_whole(record: SpoolRecord, frames: Buffer) -> bool:
    """Do ``frames`` verify as exactly the transactions the header describes?"""
    from litetool.wal.reader import StopReason, read_transactions

    header = parse_wal_header(record.position.header)
    if len(frames) != record.frames_bytes:
        return False
    try:
        result = read_transactions(
            frames,
            start_offset=0,
            page_size=header.page_size,
            salts=header.salts,
            checksum_state=record.start.checksum,
            byte_order=header.byte_order,
        )
    except ValueError:
        return False
    return (
        result.stop_reason is StopReason.END_OF_DATA
        and result.end_offset == len(frames)
        and tuple(result.checksum_state) == tuple(record.position.checksum)
        and len(result.transactions) == record.last_txid - record.first_txid + 1
        and result.transactions[-1].db_size_after_commit == record.db_size_pages
    )


def decode_records(data: Buffer) -> tuple[list[SpoolRecord], int]:
    """Every whole, verified record from the start of ``data``, and where they end."""
    records, _, end = decode_with_extents(data, verify=True)
    return records, end


def decode_with_extents(
    data: Buffer, *, verify: bool
) -> tuple[list[SpoolRecord], list[tuple[int, int, int]], int]:
    records: list[SpoolRecord] = []
    extents: list[tuple[int, int, int]] = []
    view = memoryview(data)
    pos = 0
    while True:
        record = decode_header(view, pos)
        if record is None:
            break
        start = pos + record.header_size
        end = start + record.frames_bytes
        if end > len(view):
            break
        frames = view[start:end]
        if verify and not frames_are_whole(record, frames):
            break
        records.append(replace(record, frames=frames))
        extents.append((record.last_txid, pos, end - pos))
        pos = end
    return records, extents, pos
