"""Proving, at every start, that the live database continues the spooled position.

The invariant: the database file plus the live WAL equal the replicated
image at the saved position (txid T, the state a restore of T produces) plus
the committed WAL frames after it. When it holds, litetool resumes the
generation and captures those frames as txids T+1, ...; when it cannot be
proven, a new generation starts from a snapshot and the log and the
replica's record 0 say why. The cases, and why each step is sound, are in
docs/ARCHITECTURE.md ("Why nothing is lost while litetool is down").

Three pieces of evidence, from cheapest to dearest:

1. **The WAL.** The live WAL *continues* the position when its 32-byte header
   is the saved one (same salts: SQLite has not restarted it since) and the
   frame before the saved offset still holds the saved running checksum. The
   checksum is cumulative, so every frame up to the position is exactly what
   was captured; the committed frames after it are new transactions.
2. **The seal** (``seal.json``, written by a clean stop under SQLite's write
   lock): the database file's identity, size, mtime and ctime at the
   position, and whether the file alone held the image then (the WAL fully
   checkpointed). The lock is held until the clock has moved past those
   times, so any later write to the file changes them. A file that is
   exactly as sealed, with a WAL that continues the position, or with the
   image wholly in the file, proves the invariant without reading a page.
3. **Page digests** (``litetool.engine.continuity.page_digests``): the digest of every
   page of the image at the position. Every page of the database file that
   no committed frame of the live WAL covers is read and compared (the file
   is streamed, memory stays flat); pages the WAL covers are settled by the
   WAL itself. Equal digests prove the invariant; the first page that
   differs is named in the new generation's reason.

The seal is removed as soon as it has been read: litetool's own checkpoints
write the file, and a seal must never outlive the state it describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from litetool.engine.continuity.page_digests import READ_BYTES, PageDigests, digest_pages
from litetool.engine.spool.spool import Spool, fsync_dir
from litetool.engine.spool.spool_codec import WalPosition
from litetool.errors import DatabaseError, WalFormatError
from litetool.wal.header import (
    WAL_HEADER_SIZE,
    checksum_of,
    frame_checksum_offset,
    frame_offset,
    frame_page_numbers,
    frames_read_size,
    parse_wal_header,
)
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index
from litetool.wording import plural

SEAL_FILE = "seal.json"
# A seal's file times must be behind the clock by this much before the write
# lock goes: file times come from the kernel's coarse clock (a tick behind at
# most), so a later write then always shows as a later time.
SEAL_CLOCK_MARGIN_NS = 25_000_000


@dataclass(frozen=True, slots=True)
class FileStat:
    """What changes whenever a file's bytes change (or the file is replaced)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStat | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class Seal:
    """The database file as a clean stop left it, at ``txid`` of ``generation``."""

    generation: str
    txid: int
    db: FileStat
    # The file alone held the image at txid (every WAL frame was checkpointed).
    db_complete: bool

    def to_json(self) -> dict:
        return {
            "generation": self.generation,
            "txid": self.txid,
            "db": asdict(self.db),
            "db_complete": self.db_complete,
        }

    @classmethod
    def from_json(cls, value: dict) -> Seal:
        return cls(
            str(value["generation"]),
            int(value["txid"]),
            FileStat(**{k: int(v) for k, v in value["db"].items()}),
            bool(value["db_complete"]),
        )


def read_seal(directory: Path) -> Seal | None:
    """The seal a clean stop wrote, or None (no seal, or one that cannot be read)."""
    try:
        return Seal.from_json(json.loads((directory / SEAL_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_seal(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / SEAL_FILE).unlink()
        fsync_dir(directory)


def write_seal(directory: Path, seal: Seal) -> None:
    path = directory / SEAL_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(seal.to_json(), handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)


def wait_past(stat: FileStat) -> None:
    """Return once the clock is far enough past ``stat``'s times (see the module doc)."""
    until = max(stat.mtime_ns, stat.ctime_ns) + SEAL_CLOCK_MARGIN_NS
    while (now := time.time_ns()) < until:
        time.sleep((until - now) / 1e9)


# -- the live files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveWal:
    """What the live WAL holds, seen from the saved position."""

    header: bytes | None  # the raw header of a valid WAL, else None
    page_size: int  # its page size (0: no WAL)
    continues: bool  # it continues the saved position
    covered: frozenset[int]  # pages in its committed frames (all of them, from its start)
    new_transactions: int  # committed transactions after the position (or in a new WAL)
    new_db_pages: int  # database size after the last of them (0: none)
    story: str  # how it relates to the position, for reasons
    # Some of its frames may already be in the database file (the -shm says
    # a checkpoint went or tried to go past frame 0, or cannot tell).
    maybe_checkpointed: bool = True

    @property
    def restarted(self) -> bool:
        return not self.continues


def read_live_wal(
    wal_fd: int, position: WalPosition | None, page_size: int, shm_fd: int = -1
) -> LiveWal:
    """Read the live WAL's committed frames and relate them to ``position``."""
    from litetool.wal.reader import StopReason, read_transactions

    raw = os.pread(wal_fd, WAL_HEADER_SIZE, 0) if wal_fd >= 0 else b""
    header = None
    if len(raw) == WAL_HEADER_SIZE:
        try:
            parsed = parse_wal_header(raw)
        except WalFormatError:
            parsed = None
        if parsed is not None and parsed.checksum_is_valid:
            header = parsed
    if header is None:
        story = "no WAL" if position is None else "the WAL was checkpointed and deleted or reset"
        return LiveWal(None, 0, False, frozenset(), 0, 0, story)
    if header.page_size != page_size:
        return LiveWal(
            raw, header.page_size, False, frozenset(), 0, 0, "the WAL has another page size"
        )
    continues = False
    if position is not None and position.header == raw:
        if position.offset == WAL_HEADER_SIZE:
            continues = True
        else:
            stored = os.pread(wal_fd, 8, frame_checksum_offset(position.offset, page_size))
            continues = len(stored) == 8 and checksum_of(stored) == tuple(position.checksum)
    if continues:
        assert position is not None
        start, checksum = position.offset, tuple(position.checksum)
        story = "the WAL continues the position"
    else:
        start, checksum = WAL_HEADER_SIZE, header.checksum
        if position is None:
            story = "a WAL appeared"
        elif position.header == raw:
            story = "the WAL was overwritten"
        else:
            story = "the WAL was restarted"
    covered: set[int] = set()
    # Frames up to the position (continuing): their pages are as captured.
    if continues and start > WAL_HEADER_SIZE:
        covered.update(_page_numbers(wal_fd, WAL_HEADER_SIZE, start, page_size))
    size = os.fstat(wal_fd).st_size
    transactions = 0
    db_pages = 0
    offset = start
    step = frames_read_size(READ_BYTES, page_size)
    while offset < size:
        buf = os.pread(wal_fd, min(step, size - offset), offset)
        result = read_transactions(
            buf,
            start_offset=0,
            page_size=page_size,
            salts=header.salts,
            checksum_state=checksum,
            byte_order=header.byte_order,
        )
        ends_here = result.stop_reason not in (StopReason.END_OF_DATA, StopReason.PARTIAL_FRAME)
        at_file_end = len(buf) < step
        for tx in result.transactions:
            covered.update(tx.page_numbers)
        if result.transactions:
            transactions += len(result.transactions)
            db_pages = result.transactions[-1].db_size_after_commit
            checksum = tuple(result.checksum_state)
            offset += result.end_offset
        if ends_here or (at_file_end and not result.transactions):
            break
        if not result.transactions:
            step *= 2  # one transaction larger than a piece
    checkpointed = _maybe_checkpointed(shm_fd, raw)
    return LiveWal(
        raw, page_size, continues, frozenset(covered), transactions, db_pages, story, checkpointed
    )


def _maybe_checkpointed(shm_fd: int, raw_header: bytes) -> bool:
    """Whether a checkpoint may have copied frames of this WAL into the database
    file: the -shm's checkpoint info (``nBackfill`` at 96 and
    ``nBackfillAttempted`` at 128; SQLite sets the latter to the last frame
    when it rebuilds the index) is not zero, or the -shm is not this WAL's."""
    if shm_fd < 0:
        return True
    index = parse_wal_index(os.pread(shm_fd, WAL_INDEX_READ_SIZE, 0))
    if index is None or index.n_backfill_attempted is None or not index.describes(raw_header):
        return True
    return index.n_backfill != 0 or index.n_backfill_attempted != 0


def _page_numbers(fd: int, start: int, end: int, page_size: int) -> set[int]:
    numbers: set[int] = set()
    step = frames_read_size(READ_BYTES, page_size)
    offset = start
    while offset < end:
        buf = os.pread(fd, min(step, end - offset), offset)
        found = frame_page_numbers(buf, page_size)
        if len(found) == 0:
            break
        numbers.update(found.tolist())
        offset = frame_offset(len(found), page_size, offset)
    return numbers


def database_pages(db_fd: int, page_size: int) -> int:
    """The database's size in pages, SQLite's way (header count if valid, else file size)."""
    from litetool.wal.database_header import parse_database_header

    size = os.fstat(db_fd).st_size
    head = os.pread(db_fd, 100, 0)
    try:
        parsed = parse_database_header(head)
    except DatabaseError:
        return size // page_size
    if parsed.page_count_is_valid:
        return parsed.page_count
    return size // page_size


def database_page_size(db_fd: int) -> int:
    head = os.pread(db_fd, 18, 16)
    if len(head) < 2:
        return 0
    value = int.from_bytes(head[:2], "big")
    return 65536 if value == 1 else value


# -- the proof --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether capture may resume at the saved position, and why (or why not)."""

    resume: bool
    reason: str
    wal: LiveWal
    method: str = ""  # seal | digests, when resumed


@dataclass(slots=True)
class Saved:
    """The spooled position a proof starts from."""

    generation: str
    txid: int
    position: WalPosition | None
    page_size: int
    db_pages: int


def prove(
    saved: Saved,
    *,
    db_path: Path,
    db_fd: int,
    wal_fd: int,
    shm_fd: int = -1,
    seal: Seal | None,
    digests: PageDigests | None,
    digests_missing: str,
    spool: Spool,
) -> Verdict:
    """Decide whether the live files continue ``saved`` (see the module docstring).

    Call with litetool's read fence held: backfill then only writes pages that
    committed WAL frames cover, and the WAL cannot restart while a reader
    stands after some of its frames.
    """
    wal = read_live_wal(wal_fd, saved.position, saved.page_size, shm_fd)
    for live_page_size in (database_page_size(db_fd), wal.page_size):
        if live_page_size and live_page_size != saved.page_size:
            return Verdict(
                False,
                f"the page size changed from {saved.page_size} to "
                f"{live_page_size} while litetool was not running",
                wal,
            )

    # 2. The seal: the file is exactly as a clean stop left it.
    if (
        seal is not None
        and seal.generation == saved.generation
        and seal.txid == saved.txid
        and FileStat.of(db_path) == seal.db
    ):
        if wal.continues:
            return Verdict(
                True,
                "the database file is as litetool left it and the WAL continues the position",
                wal,
                "seal",
            )
        if seal.db_complete:
            return Verdict(
                True,
                "the database file is as litetool left it and held every "
                f"transaction ({wal.story})",
                wal,
                "seal",
            )

    # 3. Page digests.
    if digests is None:
        return Verdict(
            False,
            f"cannot prove the database is unchanged since litetool stopped "
            f"({wal.story}; {digests_missing})",
            wal,
        )
    problem = bring_digests_to(digests, saved, spool)
    if problem:
        return Verdict(
            False,
            f"cannot prove the database is unchanged since litetool stopped "
            f"({wal.story}; {problem})",
            wal,
        )
    mismatch = compare_pages(db_fd, saved, wal, digests)
    if mismatch:
        return Verdict(
            False,
            f"the database changed while litetool was not running ({wal.story}; {mismatch})",
            wal,
        )
    return Verdict(True, f"every page matches the replicated image ({wal.story})", wal, "digests")


def bring_digests_to(digests: PageDigests, saved: Saved, spool: Spool) -> str:
    """Move the digests forward to the saved txid from the spool; '' or what is wrong."""
    if digests.generation != saved.generation:
        return "the saved page digests belong to another generation"
    if digests.page_size != saved.page_size:
        return "the saved page digests have another page size"
    if digests.txid > saved.txid:
        return "the saved page digests are newer than the spool"
    if digests.txid < saved.txid:
        try:
            advance_digests(digests, spool, saved.txid)
        except (OSError, DatabaseError) as exc:
            return f"the spool cannot bring the page digests up to date: {exc}"
    if digests.txid != saved.txid:
        return "the spool no longer holds what the page digests need"
    if digests.page_count != saved.db_pages:
        return (
            f"the page digests count {plural(digests.page_count, 'page')}, "
            f"the spool {saved.db_pages}"
        )
    return ""


def advance_digests(digests: PageDigests, spool: Spool, through_txid: int) -> None:
    """Apply the spooled transactions after the digests' txid, up to ``through_txid``."""
    from litetool.engine.continuity.page_digests import digest_frames

    while digests.txid < through_txid:
        located = spool.locate_after(digests.txid, max_bytes=256 << 20)
        try:
            records = [r for r in located.records if r.last_txid <= through_txid]
            if not records or records[0].first_txid != digests.txid + 1:
                return  # the spool does not hold them (the caller reports it)
            sources = [
                (fd, offset, record.frame_count)
                for record, (fd, offset, _path) in zip(records, located.sources, strict=False)
            ]
            page_count = records[-1].db_size_pages
            numbers, values = digest_frames(sources, digests.page_size, page_count)
            digests.set_pages(numbers, values)
            digests.commit(records[-1].last_txid, page_count)
        finally:
            located.close()


def compare_pages(db_fd: int, saved: Saved, wal: LiveWal, digests: PageDigests) -> str:
    """'' when the database file is the replicated image where it must be.

    - The WAL continues the position: pages that no frame of it covers must
      be the image's. Covered pages are settled by the frames (up to the
      position they are what was captured; after it they are the new
      transactions), and the file could only have received them by
      checkpoints, never the other way round.
    - Anything else (a new WAL, none): every page of the file must be the
      image's, for the file is what a new WAL's transactions start from. A
      new WAL part of which may already be checkpointed into the file
      cannot be proven (the pages it overwrote are gone).
    """
    page_size = saved.page_size
    image_pages = saved.db_pages
    if wal.continues:
        skip = wal.covered
        live_pages = wal.new_db_pages if wal.new_transactions else image_pages
    else:
        if wal.new_transactions and wal.maybe_checkpointed:
            return "the new WAL was already checkpointed, in part, into the database file"
        skip = frozenset()
        live_pages = database_pages(db_fd, page_size)
        if live_pages != image_pages:
            return f"it has {plural(live_pages, 'page')}, the replicated image {image_pages}"
    for page in range(image_pages + 1, live_pages + 1):
        if page not in skip:
            return f"page {page} appeared without a transaction"
    last = min(image_pages, live_pages)
    expected = digests.entries()
    skipped = np.fromiter(sorted(p for p in skip if p <= last), dtype=np.int64)
    step = max(1, READ_BYTES // page_size)
    first = 1
    while first <= last:
        count = min(step, last - first + 1)
        data = os.pread(db_fd, count * page_size, (first - 1) * page_size)
        if len(data) < count * page_size:
            data += bytes(count * page_size - len(data))  # past the end: zeros
        live = digest_pages(data, page_size)
        differs = live != expected[first - 1 : first - 1 + count]
        if differs.any():
            pages = np.flatnonzero(differs) + first
            pages = pages[~np.isin(pages, skipped)]
            if pages.size:
                return (
                    f"page {int(pages[0])} differs from the replicated image at txid {saved.txid}"
                )
        first += count
    return ""
