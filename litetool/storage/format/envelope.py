"""The object envelope: a 48-byte header in front of every stored object.

Byte layout (docs/FORMAT.md section 2), integers big-endian::

    offset size field
    0      4    magic b"LTO1"
    4      1    envelope version, 1
    5      1    kind: 1 segment, 2 snapshot chunk, 3 snapshot manifest, 4 index record
    6      1    codec: 0 none, 1 zstd (level -1, content size in the frame header)
    7      1    flags, 0 (readers reject anything else)
    8      8    uncompressed payload length (at most 1 GiB)
    16     32   BLAKE3-256 of the uncompressed payload
    48     ...  stored payload, to the end of the object

A content-addressed object's name is the BLAKE3-256 of *all* its stored bytes
(header included). :func:`decode_object` checks, in this order: the name (when
a digest is expected), magic, version, kind, codec, flags, the length bound,
the decompressed length, and the payload digest; each failure is
``CorruptObject(key, problem)``. A payload is never returned unless its digest
matched, so no corruption can yield a wrong payload.

The length bound is what the object may legitimately hold, checked from the
header before anything is decompressed or allocated: a caller that knows the
exact length (a segment from its index entry, a chunk from its manifest)
passes ``expected_length``; index records are JSON documents of at most
``MAX_DOCUMENT_BYTES``, and so are manifests unless their snapshot is larger
than 4 TiB (:func:`max_manifest_bytes`); nothing is larger than
``MAX_PAYLOAD_BYTES``.
A zstd "bomb" (a few KiB that claim a GiB) therefore costs nothing.

Pure: bytes in, values out. Compressor and decompressor objects are reused per
thread; zstd and blake3 release the GIL, so callers may run large objects in
worker threads.
"""

from __future__ import annotations

import struct
import threading
from enum import IntEnum

import blake3
import zstandard

from litetool.errors import CorruptObject

MAGIC = b"LTO1"
ENVELOPE_VERSION = 1
HEADER_SIZE = 48
MAX_PAYLOAD_BYTES = 1 << 30
#: Index records and snapshot manifests (JSON): far above any that litetool writes
#: (a compacted record of 8192 entries is about 1.3 MB; a manifest names one
#: 4 MiB chunk in 67 bytes, so 64 MiB name the chunks of a 4 TiB database).
MAX_DOCUMENT_BYTES = 64 << 20
ZSTD_LEVEL = -1  # see docs/FORMAT.md: a third less CPU than 1, about 1 % larger
FLAGS_NONE = 0
DIGEST_SIZE = 32

# magic, version, kind, codec, flags, uncompressed length, payload digest
_HEADER = struct.Struct(">4sBBBBQ32s")
assert _HEADER.size == HEADER_SIZE

#: The stored size of an empty payload's zstd frame, with room for other encoders' headers.
_EMPTY_FRAME_MAX_BYTES = 32

# Below this size a single-threaded hash is faster than spinning up threads.
_PARALLEL_HASH_BYTES = 8 << 20


class ObjectKind(IntEnum):
    SEGMENT = 1
    SNAPSHOT_CHUNK = 2
    SNAPSHOT_MANIFEST = 3
    INDEX_RECORD = 4


class Codec(IntEnum):
    NONE = 0
    ZSTD = 1


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        _local.compressor = compressor
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = zstandard.ZstdDecompressor()
        _local.decompressor = decompressor
    return decompressor


def blake3_digest(data: bytes | bytearray | memoryview) -> bytes:
    """BLAKE3-256 of *data* (multi-threaded for large inputs)."""
    if len(data) >= _PARALLEL_HASH_BYTES:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    return blake3.blake3(data).digest()


def digest_hex(stored: bytes | bytearray | memoryview) -> str:
    """The content address of stored bytes: 64 lowercase hex digits."""
    return blake3_digest(stored).hex()


def max_manifest_bytes(page_count: int, page_size: int) -> int:
    """The largest manifest payload a snapshot of *page_count* pages may have: 64 MiB,
    or 70 bytes per chunk of the default 4 MiB (a chunk's digest takes 67) when the
    image needs more; never above ``MAX_PAYLOAD_BYTES``."""
    chunks = -(-page_count * page_size // (4 << 20))
    return min(MAX_PAYLOAD_BYTES, max(MAX_DOCUMENT_BYTES, 4096 + 70 * chunks))


def max_stored_bytes(payload_length: int) -> int:
    """The most bytes an object whose payload is *payload_length* bytes can occupy:
    the header plus zstd's worst case (incompressible data) with room to spare."""
    return HEADER_SIZE + payload_length + (payload_length >> 7) + (64 << 10)


def encode_object(
    kind: ObjectKind, payload: bytes | bytearray | memoryview, codec: Codec = Codec.ZSTD
) -> bytes:
    """Header + (compressed) payload, ready to store."""
    kind = ObjectKind(kind)
    codec = Codec(codec)
    length = len(payload)
    if length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {length} bytes exceeds {MAX_PAYLOAD_BYTES}")
    header = _HEADER.pack(
        MAGIC, ENVELOPE_VERSION, kind, codec, FLAGS_NONE, length, blake3_digest(payload)
    )
    if codec is Codec.ZSTD:
        body: bytes | bytearray | memoryview = _compressor().compress(payload)
    else:
        body = payload
    return b"".join((header, body))


def decode_object(
    key: str,
    stored: bytes | bytearray | memoryview,
    expected_kind: ObjectKind,
    expected_digest: str | None,
    *,
    expected_length: int | None = None,
    max_length: int | None = None,
) -> bytes | memoryview:
    """Verify *stored* (read from *key*) and return its uncompressed payload.

    *expected_digest* is the hex digest the key names (content-addressed
    objects) or ``None`` (index records). *expected_length*, when given, is
    the exact payload length the referrer knows; *max_length* bounds it
    otherwise (default: ``MAX_DOCUMENT_BYTES`` for an index record,
    ``MAX_PAYLOAD_BYTES`` for the rest; both are checked before
    decompressing). Every failure is
    ``CorruptObject``. With codec ``none`` the payload is a zero-copy
    memoryview of *stored*.
    """
    view = memoryview(stored).cast("B")
    if expected_digest is not None and digest_hex(view) != expected_digest:
        raise CorruptObject(key, "content does not match its name (BLAKE3 digest differs)")
    if len(view) < HEADER_SIZE:
        raise CorruptObject(key, f"truncated: {len(view)} bytes is shorter than the header")
    magic, version, kind, codec, flags, length, payload_digest = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise CorruptObject(key, f"bad magic {magic!r}")
    if version != ENVELOPE_VERSION:
        raise CorruptObject(key, f"unknown envelope version {version}")
    if kind != expected_kind:
        raise CorruptObject(key, f"object kind {kind}, expected {int(expected_kind)}")
    if codec not in (Codec.NONE, Codec.ZSTD):
        raise CorruptObject(key, f"unknown codec {codec}")
    if flags != FLAGS_NONE:
        raise CorruptObject(key, f"unknown flags {flags:#04x}")
    if length > MAX_PAYLOAD_BYTES:
        raise CorruptObject(key, f"payload length {length} exceeds {MAX_PAYLOAD_BYTES}")
    if expected_length is not None and length != expected_length:
        raise CorruptObject(
            key,
            f"header says the payload is {length} bytes, what names the object says "
            f"{expected_length}",
        )
    if max_length is None:
        max_length = (
            MAX_DOCUMENT_BYTES if expected_kind == ObjectKind.INDEX_RECORD else MAX_PAYLOAD_BYTES
        )
    if length > max_length:
        raise CorruptObject(
            key, f"payload length {length} is more than the {max_length} bytes allowed for it"
        )
    body = view[HEADER_SIZE:]
    payload = _decompress(key, body, length) if codec == Codec.ZSTD else body
    if len(payload) != length:
        raise CorruptObject(key, f"payload is {len(payload)} bytes, header says {length}")
    if blake3_digest(payload) != payload_digest:
        raise CorruptObject(key, "payload digest mismatch")
    return payload


def _decompress(key: str, body: memoryview, length: int) -> bytes:
    # The frame's declared content size is checked against the header before
    # decompressing, so a hostile frame cannot make us allocate more than the
    # (bounded) header length.
    try:
        declared = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise CorruptObject(key, f"bad zstd frame header: {exc}") from exc
    if declared != length:
        raise CorruptObject(key, f"zstd frame declares {declared} bytes, header says {length}")
    try:
        if length == 0:
            # One-shot decompression trusts a declared size of 0 without reading the
            # frame's blocks; a streaming object reports whether the frame really ended.
            # It returns all it decodes, so the frame must be small enough to hold
            # little: an empty frame is 9 bytes, and a block header of 4 bytes can
            # stand for 128 KiB.
            if len(body) > _EMPTY_FRAME_MAX_BYTES:
                raise CorruptObject(
                    key,
                    f"a zstd frame of nothing takes {len(body)} bytes (at most "
                    f"{_EMPTY_FRAME_MAX_BYTES})",
                )
            stream = _decompressor().decompressobj()
            payload = stream.decompress(body)
            if not stream.eof or stream.unused_data:
                raise CorruptObject(key, "incomplete or trailing zstd data")
            return payload
        return _decompressor().decompress(body, max_output_size=length, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise CorruptObject(key, f"zstd decompression failed: {exc}") from exc
