"""Snapshot manifest codec (docs/FORMAT.md section 4)."""

import json

import pytest

from litetool.errors import ReplicaFormatError
from litetool.storage import SnapshotManifest, decode_manifest, encode_manifest

CHUNKS = tuple(c * 64 for c in "abc")


def test_round_trip_and_deterministic_encoding():
    manifest = SnapshotManifest(7, 123, 4096, 12, 16384, CHUNKS)
    payload = encode_manifest(manifest)
    assert payload == (
        b'{"txid":7,"time_us":123,"page_size":4096,"page_count":12,"chunk_size":16384,'
        b'"chunks":["' + b'","'.join(c.encode() for c in CHUNKS) + b'"]}'
    )
    assert decode_manifest(payload) == manifest
    assert manifest.image_size == 12 * 4096
    assert [manifest.chunk_length(i) for i in range(3)] == [16384, 16384, 16384]


def test_last_chunk_may_be_shorter():
    manifest = SnapshotManifest(0, 0, 4096, 5, 8192, CHUNKS)
    assert [manifest.chunk_length(i) for i in range(3)] == [8192, 8192, 4096]
    with pytest.raises(IndexError):
        manifest.chunk_length(3)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(chunks=CHUNKS[:2]), "2 chunks, expected 3"),
        (dict(chunk_size=5000), "not a multiple"),
        (dict(page_size=1000, chunk_size=16000), "page size"),
        (dict(page_count=0), "page_count must be in"),
        (dict(page_count=2**32 - 1), "page_count must be in 1..4294967294"),
        (dict(chunk_size=(64 << 20) + 4096, chunks=CHUNKS[:1]), "chunk_size must be in"),
        (dict(chunks=[*CHUNKS[:2], 5]), r"chunks\[2\]"),
        (dict(chunks=[*CHUNKS[:2], "Z" * 64]), "digest"),
        (dict(txid=-1), "txid must be in"),
    ],
)
def test_invalid_manifests_are_rejected(change, match):
    document = dict(
        txid=7, time_us=1, page_size=4096, page_count=12, chunk_size=16384, chunks=list(CHUNKS)
    )
    document.update(change)
    with pytest.raises(ReplicaFormatError, match=match):
        decode_manifest(json.dumps(document).encode())
