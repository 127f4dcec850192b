"""The wal-index header in ``-shm``: what litetool reads of it, and where.

SQLite keeps the wal-index in the ``-shm`` file beside the WAL, in the
machine's native byte order. Its first 136 bytes are two copies of the
48-byte ``WalIndexHdr`` (a writer updates the first, then the second: copies
that differ are being written) and the ``WalCkptInfo`` after them:

====== ============================ ==================================
offset field                        litetool's use
====== ============================ ==================================
12     isInit                       0: the index is being rebuilt
16     mxFrame                      the last committed frame
32     aSalt (8 bytes)              the WAL header's salts, as raw bytes
96     nBackfill                    frames copied into the database file
128    nBackfillAttempted           frames a checkpoint tried to copy
====== ============================ ==================================

Byte 121 is SQLite's checkpoint lock (``WALINDEX_LOCK_OFFSET`` 120 +
``WAL_CKPT_LOCK`` 1), taken exclusively by every checkpoint.

Pure: the engine reads ``WAL_INDEX_READ_SIZE`` bytes at offset 0 and parses
them here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from litetool.wal.header import frame_offset, raw_salts

WAL_INDEX_HEADER_SIZE = 48
#: What to read from offset 0: both header copies and the checkpoint info up to
#: ``nBackfillAttempted``.
WAL_INDEX_READ_SIZE = 132
CHECKPOINT_LOCK_BYTE = 121

_N_BACKFILL = 96
_N_BACKFILL_ATTEMPTED = 128


@dataclass(frozen=True, slots=True)
class WalIndex:
    """The wal-index header as one consistent read saw it."""

    initialized: bool
    mx_frame: int
    salts: bytes  # 8 bytes, as in the WAL header at 16..24
    n_backfill: int | None  # None: not in the bytes read
    n_backfill_attempted: int | None

    def describes(self, raw_wal_header: bytes) -> bool:
        """Whether this index is the one of the WAL whose 32-byte header is given."""
        return self.salts == raw_salts(raw_wal_header)

    def end_offset(self, page_size: int) -> int:
        """The WAL offset just past the last committed frame."""
        return frame_offset(self.mx_frame, page_size)

    @property
    def fully_backfilled(self) -> bool:
        """Every committed frame is in the database file (per ``nBackfill``)."""
        return self.n_backfill == self.mx_frame


def _u32(head: bytes, offset: int) -> int:
    return int.from_bytes(head[offset : offset + 4], sys.byteorder)


def parse_wal_index(head: bytes) -> WalIndex | None:
    """The header in *head* (read from offset 0 of ``-shm``), or None when it is
    shorter than the two header copies or the copies differ (being written: the
    next read sees it whole)."""
    size = WAL_INDEX_HEADER_SIZE
    if len(head) < 2 * size or head[:size] != head[size : 2 * size]:
        return None
    return WalIndex(
        initialized=bool(head[12]),
        mx_frame=_u32(head, 16),
        salts=bytes(head[32:40]),
        n_backfill=_u32(head, _N_BACKFILL) if len(head) >= _N_BACKFILL + 4 else None,
        n_backfill_attempted=(
            _u32(head, _N_BACKFILL_ATTEMPTED) if len(head) >= _N_BACKFILL_ATTEMPTED + 4 else None
        ),
    )
