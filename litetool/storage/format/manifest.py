"""Snapshot manifests (object kind 3; docs/FORMAT.md section 4).

A snapshot is the full database image after transaction ``txid``, cut into
fixed-size chunks of ``chunk_size`` bytes (a multiple of the page size, at
most ``MAX_CHUNK_SIZE``; the last chunk may be shorter). Each chunk is a
content-addressed object of kind 2 whose payload is the raw chunk. The
manifest, itself content-addressed, is a UTF-8 JSON object::

    {"txid": 0, "time_us": 1764040000000000, "page_size": 4096, "page_count": 12,
     "chunk_size": 4194304, "chunks": ["<64 hex>", ...]}

``page_count * page_size`` is the image size and ``chunks`` has
``ceil(image size / chunk_size)`` entries. The encoding is deterministic
(fixed field order, no spaces), so an identical snapshot has the same digest.
Pure: bytes in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass

from litetool.errors import ReplicaFormatError
from litetool.storage.format.json_fields import MIN_I64, Fields, dump_json, parse_json_object
from litetool.storage.format.keys import validate_digest
from litetool.storage.format.segment import MAX_PAGE_NUMBER, MAX_U32, is_valid_page_size
from litetool.wording import plural

DEFAULT_CHUNK_SIZE = 4 << 20
#: The largest chunk a reader accepts: 16 times what litetool writes. A chunk is held in
#: memory while it is written out, so the manifest bounds what one chunk may cost.
MAX_CHUNK_SIZE = 64 << 20


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    txid: int
    time_us: int
    page_size: int
    page_count: int
    chunk_size: int
    chunks: tuple[str, ...]

    @property
    def image_size(self) -> int:
        return self.page_count * self.page_size

    def chunk_length(self, index: int) -> int:
        """Bytes in chunk *index* (only the last one may be shorter)."""
        if not 0 <= index < len(self.chunks):
            raise IndexError(index)
        return min(self.chunk_size, self.image_size - index * self.chunk_size)


def expected_chunk_count(page_size: int, page_count: int, chunk_size: int) -> int:
    return -(-(page_size * page_count) // chunk_size)


def _check(manifest: SnapshotManifest) -> SnapshotManifest:
    if not is_valid_page_size(manifest.page_size):
        raise ReplicaFormatError(f"malformed snapshot manifest: page size {manifest.page_size}")
    if not 1 <= manifest.page_count <= MAX_PAGE_NUMBER:
        raise ReplicaFormatError(f"malformed snapshot manifest: page count {manifest.page_count}")
    if not (
        0 < manifest.chunk_size <= MAX_CHUNK_SIZE and manifest.chunk_size % manifest.page_size == 0
    ):
        raise ReplicaFormatError(
            f"malformed snapshot manifest: chunk size {manifest.chunk_size} is not a "
            f"multiple of the page size {manifest.page_size} up to {MAX_CHUNK_SIZE}"
        )
    expected = expected_chunk_count(manifest.page_size, manifest.page_count, manifest.chunk_size)
    if len(manifest.chunks) != expected:
        raise ReplicaFormatError(
            f"malformed snapshot manifest: {plural(len(manifest.chunks), 'chunk')}, "
            f"expected {expected}"
        )
    for digest in manifest.chunks:
        validate_digest(digest)
    return manifest


def encode_manifest(manifest: SnapshotManifest) -> bytes:
    """The JSON payload of *manifest* (validated first: an invalid one is a bug)."""
    _check(manifest)
    return dump_json(
        {
            "txid": manifest.txid,
            "time_us": manifest.time_us,
            "page_size": manifest.page_size,
            "page_count": manifest.page_count,
            "chunk_size": manifest.chunk_size,
            "chunks": list(manifest.chunks),
        }
    )


def decode_manifest(payload: bytes | bytearray | memoryview) -> SnapshotManifest:
    """Parse and validate a manifest payload (ReplicaFormatError otherwise)."""
    fields = Fields("snapshot manifest", parse_json_object("snapshot manifest", payload))
    chunks = fields.items("chunks")
    for index, digest in enumerate(chunks):
        if not isinstance(digest, str):
            raise fields.error(f"chunks[{index}]", "must be a digest string")
    return _check(
        SnapshotManifest(
            txid=fields.integer("txid"),
            time_us=fields.integer("time_us", MIN_I64),
            page_size=fields.integer("page_size", 1, MAX_U32),
            page_count=fields.integer("page_count", 1, MAX_PAGE_NUMBER),
            chunk_size=fields.integer("chunk_size", 1, MAX_CHUNK_SIZE),
            chunks=tuple(chunks),
        )
    )
