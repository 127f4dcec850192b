"""The SQLite WAL checksum: specification and plain-Python reference.

The checksum state is a pair of unsigned 32-bit integers ``(s0, s1)``. The
input is a byte string whose length is a multiple of 8, read as 32-bit words
``w0, w1, w2, ...`` in the byte order the WAL magic selects (little-endian
for 0x377f0682, big-endian for 0x377f0683). Words are consumed in pairs::

    for each pair (a, b):
        s0 = (s0 + a + s1) mod 2**32
        s1 = (s1 + b + s0) mod 2**32        # uses the new s0

Chaining, exactly as SQLite does it:

- The WAL header checksum covers header bytes 0..24, starting from (0, 0).
- Frame 1's checksum covers its frame header bytes 0..8 (page number and db
  size after commit) and then its page, starting from the header checksum.
- Frame n's checksum does the same, starting from frame n-1's checksum.

The checksum is stored as two big-endian words whatever the byte order.

Linear form (what ``litetool.wal.checksum_fast`` uses): one pair step is
``state' = M @ state + (a, a + b)`` with ``M = [[1, 1], [1, 2]]`` mod 2**32,
so over ``n`` pairs ``state_n = M**n @ state_0 + sum_k M**(n-1-k) @ v_k``.
The second term does not depend on the incoming state and can be computed
for many frames at once.

This module is the reference: simple enough to check by eye, about 60 MB/s.
The engine's hot path uses the numpy implementation, which the tests check
against this one.
"""

from __future__ import annotations

import enum
import struct

#: The running checksum (s0, s1), both unsigned 32-bit.
ChecksumState = tuple[int, int]

WAL_MAGIC_LITTLE_ENDIAN = 0x377F0682
WAL_MAGIC_BIG_ENDIAN = 0x377F0683

_MASK = 0xFFFFFFFF


class ByteOrder(enum.Enum):
    """Byte order of the 32-bit words the checksum reads, selected by the WAL magic."""

    LITTLE = "little"
    BIG = "big"

    @property
    def magic(self) -> int:
        """The WAL header magic that selects this byte order."""
        return WAL_MAGIC_LITTLE_ENDIAN if self is ByteOrder.LITTLE else WAL_MAGIC_BIG_ENDIAN

    @classmethod
    def from_magic(cls, magic: int) -> ByteOrder | None:
        """The byte order a magic selects, or None when it is not a WAL magic."""
        if magic == WAL_MAGIC_LITTLE_ENDIAN:
            return cls.LITTLE
        if magic == WAL_MAGIC_BIG_ENDIAN:
            return cls.BIG
        return None


def checksum_reference(
    data: bytes | bytearray | memoryview,
    state: ChecksumState = (0, 0),
    *,
    byte_order: ByteOrder = ByteOrder.LITTLE,
) -> ChecksumState:
    """Continue the WAL checksum ``state`` over ``data``; return the new state.

    Raises ValueError when ``len(data)`` is not a multiple of 8.
    """
    if len(data) % 8:
        raise ValueError(f"WAL checksum input must be a multiple of 8 bytes, got {len(data)}")
    prefix = "<" if byte_order is ByteOrder.LITTLE else ">"
    words = struct.unpack(f"{prefix}{len(data) // 4}I", data)
    s0, s1 = state
    for index in range(0, len(words), 2):
        s0 = (s0 + words[index] + s1) & _MASK
        s1 = (s1 + words[index + 1] + s0) & _MASK
    return (s0, s1)
