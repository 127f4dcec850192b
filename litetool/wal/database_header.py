"""The SQLite database header: the first 100 bytes of page 1.

Page 1 travels through the WAL like any other page, so the header of the
database as of a transaction is the start of the latest frame for page 1.
All multi-byte integers are big-endian.

::

    offset  size  field
         0    16  magic: b"SQLite format 3\\x00"
        16     2  page size in bytes: a power of two 512 .. 32768,
                  or 1 meaning 65536
        18     1  file format write version: 1 = rollback journal, 2 = WAL
        19     1  file format read version:  1 = rollback journal, 2 = WAL
        20     1  reserved bytes at the end of each page
        21     3  payload fractions (always 64, 32, 32)
        24     4  file change counter
        28     4  database size in pages (trusted only when non-zero and the
                  file change counter equals "version valid for", offset 92)
        32     4  first freelist trunk page
        36     4  number of freelist pages
        40     4  schema cookie
        44     4  schema format number (1 .. 4)
        48     4  default page cache size
        52     4  largest root b-tree page (auto-vacuum), else 0
        56     4  text encoding: 1 = UTF-8, 2 = UTF-16le, 3 = UTF-16be
        60     4  user version
        64     4  incremental-vacuum mode
        68     4  application id
        72    20  reserved, zero
        92     4  version valid for: the change counter when offset 96 was written
        96     4  SQLITE_VERSION_NUMBER of the library that last wrote the file
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from litetool.errors import DatabaseError

DATABASE_HEADER_SIZE = 100
DATABASE_MAGIC = b"SQLite format 3\x00"

_FIELDS = struct.Struct(">16sHBBB3x12I20x2I")
TEXT_ENCODING_UTF8 = 1
TEXT_ENCODING_UTF16LE = 2
TEXT_ENCODING_UTF16BE = 3


@dataclass(frozen=True, slots=True)
class DatabaseHeader:
    """The fields of the 100-byte database header that litetool uses."""

    page_size: int
    write_version: int
    read_version: int
    reserved_bytes: int
    file_change_counter: int
    page_count: int
    freelist_trunk_page: int
    freelist_page_count: int
    schema_cookie: int
    schema_format: int
    default_cache_size: int
    largest_root_page: int
    text_encoding: int
    user_version: int
    incremental_vacuum: int
    application_id: int
    version_valid_for: int
    sqlite_version_number: int

    @property
    def page_count_is_valid(self) -> bool:
        """SQLite's rule for trusting ``page_count`` over the file size."""
        return self.page_count != 0 and self.file_change_counter == self.version_valid_for

    @property
    def is_wal_mode(self) -> bool:
        """True when the file format versions say WAL (both 2)."""
        return self.write_version == 2 and self.read_version == 2


def parse_database_header(data: bytes | bytearray | memoryview) -> DatabaseHeader:
    """Parse the database header at the start of ``data`` (at least 100 bytes).

    Raises DatabaseError, naming the byte offset, when the bytes are not a
    SQLite database header: too short, wrong magic, impossible page size.
    """
    if len(data) < DATABASE_HEADER_SIZE:
        raise DatabaseError(
            f"truncated database header: {len(data)} bytes at byte offset 0,"
            f" need {DATABASE_HEADER_SIZE}"
        )
    magic, stored_page_size, write_version, read_version, reserved_bytes, *numbers = (
        _FIELDS.unpack_from(data, 0)
    )
    if magic != DATABASE_MAGIC:
        raise DatabaseError(f"not a SQLite database: bad magic {magic!r} at byte offset 0")
    page_size = 65536 if stored_page_size == 1 else stored_page_size
    if not 512 <= page_size <= 65536 or page_size & (page_size - 1):
        raise DatabaseError(f"impossible database page size {stored_page_size} at byte offset 16")
    return DatabaseHeader(page_size, write_version, read_version, reserved_bytes, *numbers)
