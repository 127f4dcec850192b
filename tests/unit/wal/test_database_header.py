"""The 100-byte SQLite database header."""

import struct

import pytest

from litetool.errors import DatabaseError
from litetool.wal import DATABASE_HEADER_SIZE, parse_database_header


def header_bytes(stored_page_size: int = 4096, magic: bytes = b"SQLite format 3\x00") -> bytes:
    """A header laid out field by field from the SQLite file format document."""
    data = bytearray(DATABASE_HEADER_SIZE)
    data[0:16] = magic
    struct.pack_into(">H", data, 16, stored_page_size)
    data[18], data[19], data[20] = 2, 2, 8  # WAL mode, 8 reserved bytes
    data[21:24] = bytes([64, 32, 32])
    for offset, value in [(24, 41), (28, 123), (32, 5), (36, 6), (40, 77), (44, 4), (48, 2000),
                          (52, 0), (56, 1), (60, 12), (64, 0), (68, 0x4C495445), (92, 41),
                          (96, 3040001)]:
        struct.pack_into(">I", data, offset, value)
    return bytes(data)


def test_fields_at_their_offsets() -> None:
    header = parse_database_header(header_bytes() + b"rest of page 1")
    assert header.page_size == 4096
    assert (header.write_version, header.read_version, header.reserved_bytes) == (2, 2, 8)
    assert header.is_wal_mode
    assert (header.file_change_counter, header.page_count) == (41, 123)
    assert (header.freelist_trunk_page, header.freelist_page_count) == (5, 6)
    assert (header.schema_cookie, header.schema_format, header.default_cache_size) == (77, 4, 2000)
    assert (header.text_encoding, header.user_version, header.application_id) == (1, 12,
                                                                                 0x4C495445)
    assert (header.version_valid_for, header.sqlite_version_number) == (41, 3040001)
    assert header.page_count_is_valid


def test_stored_page_size_1_means_65536() -> None:
    assert parse_database_header(header_bytes(stored_page_size=1)).page_size == 65536


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (header_bytes(stored_page_size=1000), "impossible database page size 1000 at byte offset"),
        (header_bytes(stored_page_size=256), "impossible database page size 256 at byte offset 16"),
        (header_bytes(stored_page_size=0), "impossible database page size 0 at byte offset 16"),
        (header_bytes(magic=b"SQLite format 4\x00"), "bad magic .* at byte offset 0"),
        (header_bytes()[:99], "truncated database header: 99 bytes"),
    ],
)
def test_bytes_that_are_not_a_database_header(data: bytes, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        parse_database_header(data)
