"""The SQLite WAL codec: bytes in, values out.

Pure: no file or network I/O, no sqlite3, no asyncio. Importing this package
is cheap; numpy is imported on first use of the batched paths
(``read_transactions``, ``encode_frames`` / ``encode_wal`` and the
``litetool.wal.checksum_fast`` module).

Where the byte-level spec lives:

- ``header``: WAL header and frame header layout, parse / encode;
- ``checksum``: the checksum algorithm and its chaining, plain-Python
  reference; ``checksum_fast``: the same with numpy, batched over frames;
- ``reader``: which frames are valid, how they group into transactions,
  and why a read stops;
- ``encoder``: building WAL bytes from pages;
- ``database_header``: the 100-byte SQLite database header;
- ``shm``: the wal-index header in ``-shm`` (the engine reads it, this parses it).
"""

from litetool.wal.checksum import (
    WAL_MAGIC_BIG_ENDIAN,
    WAL_MAGIC_LITTLE_ENDIAN,
    ByteOrder,
    ChecksumState,
    checksum_reference,
)
from litetool.wal.database_header import (
    DATABASE_HEADER_SIZE,
    DatabaseHeader,
    parse_database_header,
)
from litetool.wal.encoder import encode_frames, encode_wal
from litetool.wal.header import (
    FRAME_HEADER_SIZE,
    PAGE_SIZES,
    WAL_FORMAT_VERSION,
    WAL_HEADER_SIZE,
    FrameHeader,
    WalHeader,
    check_wal_header_prefix,
    encode_frame_header,
    encode_wal_header,
    frame_size,
    is_valid_page_size,
    new_wal_header,
    parse_frame_header,
    parse_wal_header,
)
from litetool.wal.reader import (
    DecodedWal,
    StopReason,
    Transaction,
    WalReadResult,
    decode_wal,
    read_transactions,
    read_transactions_reference,
)

__all__ = [
    "DATABASE_HEADER_SIZE",
    "FRAME_HEADER_SIZE",
    "PAGE_SIZES",
    "WAL_FORMAT_VERSION",
    "WAL_HEADER_SIZE",
    "WAL_MAGIC_BIG_ENDIAN",
    "WAL_MAGIC_LITTLE_ENDIAN",
    "ByteOrder",
    "ChecksumState",
    "DatabaseHeader",
    "DecodedWal",
    "FrameHeader",
    "StopReason",
    "Transaction",
    "WalHeader",
    "WalReadResult",
    "check_wal_header_prefix",
    "checksum_reference",
    "decode_wal",
    "encode_frame_header",
    "encode_frames",
    "encode_wal",
    "encode_wal_header",
    "frame_size",
    "is_valid_page_size",
    "new_wal_header",
    "parse_database_header",
    "parse_frame_header",
    "parse_wal_header",
    "read_transactions",
    "read_transactions_reference",
]
