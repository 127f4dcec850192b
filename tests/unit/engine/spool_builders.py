"""Real spools for the replica sync's unit tests (imported as ``spool_builders``;
this directory is on sys.path): WAL frames encoded by litetool.wal, appended to
a ``Spool`` in a temporary directory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from litetool.engine.spool.spool import Spool
from litetool.engine.spool.spool_codec import SpoolRecord, WalPosition
from litetool.engine.spool.spool_state import SpoolState
from litetool.wal.checksum import ByteOrder
from litetool.wal.encoder import encode_frames
from litetool.wal.header import (
    WAL_HEADER_SIZE,
    encode_wal_header,
    new_wal_header,
    parse_wal_header,
)

PAGE = 512
T0 = 1_764_040_000_000_000


def wal_start(
    page_size: int, salts: tuple[int, int], byte_order: ByteOrder = ByteOrder.LITTLE
) -> WalPosition:
    """The position just after the header of a new WAL of these fields."""
    header = new_wal_header(page_size=page_size, salts=salts, byte_order=byte_order)
    return WalPosition(encode_wal_header(header), WAL_HEADER_SIZE, header.checksum)


def frames_after(position: WalPosition, frames: list) -> tuple[bytes, WalPosition]:
    """*frames* ((page number, database size after a commit or 0, page image))
    encoded by litetool.wal as the WAL continues at *position* (its checksum
    chain and salts), and the position after them."""
    header = parse_wal_header(position.header)
    data, state = encode_frames(
        frames,
        page_size=header.page_size,
        salts=header.salts,
        checksum_state=position.checksum,
        byte_order=header.byte_order,
    )
    return data, WalPosition(position.header, position.offset + len(data), state)


def spool_records(
    transactions: int,
    *,
    per_record: int = 1,
    page_size: int = 4096,
    salts: tuple[int, int] = (5, 6),
) -> list[SpoolRecord]:
    """Spool records of txids 1..*transactions*, *per_record* to a record, each
    transaction one frame of page ``txid % 3 + 1`` (database of 3 pages),
    committed at ``T0 + txid``, WAL checksums chained across records as capture
    writes them."""
    position = wal_start(page_size, salts)
    out = []
    for first in range(1, transactions + 1, per_record):
        last = min(transactions, first + per_record - 1)
        frames = [(t % 3 + 1, 3, bytes([t % 256]) * page_size) for t in range(first, last + 1)]
        data, end = frames_after(position, frames)
        runs = tuple((t, T0 + t) for t in range(first, last))
        out.append(SpoolRecord(first, last, T0 + last, position, end, 3, len(frames), data, runs))
        position = end
    return out


def make_spool(directory: Path, transactions: int, *, per_record: int = 1) -> Spool:
    """A spool holding txids 1..*transactions*, *per_record* to a spool record,
    each transaction one frame of page ``txid % 3 + 1`` (database of 3 pages),
    committed at ``T0 + txid``."""
    spool = Spool(directory, max_bytes=1 << 30)
    spool.open()
    spool.start_generation(SpoolState("g", "first run", T0, PAGE, 0, None, 3))
    for record in spool_records(transactions, per_record=per_record, page_size=PAGE, salts=(3, 4)):
        spool.append(record)
    return spool


def engine_view(spool: Spool | None, txid: int, **fields) -> SimpleNamespace:
    """The capture side as a replica task sees it (``EngineView``)."""
    return SimpleNamespace(
        generation=fields.pop("generation", "019ab8fa42001234"),
        generation_reason=fields.pop("generation_reason", "first run"),
        txid=txid,
        last_time_us=T0 + txid,
        spool=spool,
        writer_id=fields.pop("writer_id", "test:1:engine"),
        backpressure=fields.pop("backpressure", False),
        **fields,
    )
