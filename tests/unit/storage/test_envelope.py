"""The 48-byte object envelope (docs/FORMAT.md section 2): every check, in order."""

import struct

import pytest
import zstandard

from litetool.errors import CorruptObject
from litetool.storage import (
    HEADER_SIZE,
    Codec,
    ObjectKind,
    decode_object,
    digest_hex,
    encode_object,
)
from litetool.storage.format.envelope import blake3_digest

PAYLOAD = b"litetool page data " * 300


def _stored(payload=PAYLOAD, kind=ObjectKind.SEGMENT, codec=Codec.ZSTD):
    return encode_object(kind, payload, codec)


def _problem(key, stored, kind=ObjectKind.SEGMENT, digest="auto"):
    if digest == "auto":
        digest = digest_hex(stored)
    with pytest.raises(CorruptObject) as info:
        decode_object(key, stored, kind, digest)
    assert info.value.key == key
    return info.value.problem


def _with_header(stored, **fields):
    magic, version, kind, codec, flags, length, digest = struct.unpack_from(">4sBBBBQ32s", stored)
    values = dict(
        magic=magic,
        version=version,
        kind=kind,
        codec=codec,
        flags=flags,
        length=length,
        digest=digest,
    )
    values.update(fields)
    header = struct.pack(">4sBBBBQ32s", *values.values())
    return header + stored[HEADER_SIZE:]


def test_header_layout_is_byte_exact():
    stored = _stored(b"abc", kind=ObjectKind.INDEX_RECORD, codec=Codec.NONE)
    assert stored[:4] == b"LTO1"
    assert stored[4:8] == bytes([1, 4, 0, 0])
    assert stored[8:16] == (3).to_bytes(8, "big")
    assert stored[16:48] == blake3_digest(b"abc")
    assert stored[48:] == b"abc"


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize("kind", list(ObjectKind))
def test_round_trip(kind, codec):
    stored = encode_object(kind, PAYLOAD, codec)
    assert bytes(decode_object("k", stored, kind, digest_hex(stored))) == PAYLOAD
    assert bytes(decode_object("k", stored, kind, None)) == PAYLOAD


def test_zstd_frame_is_level_one_with_content_size():
    stored = _stored()
    assert zstandard.frame_content_size(stored[HEADER_SIZE:]) == len(PAYLOAD)
    assert stored[HEADER_SIZE:] == zstandard.ZstdCompressor(level=1).compress(PAYLOAD)


def test_empty_payload():
    stored = _stored(b"")
    assert bytes(decode_object("k", stored, ObjectKind.SEGMENT, digest_hex(stored))) == b""


def test_name_is_checked_first():
    stored = _stored()
    assert "does not match its name" in _problem("k", b"junk", digest=digest_hex(stored))


def test_truncated_header():
    assert "truncated" in _problem("k", _stored()[:47], digest=None)


@pytest.mark.parametrize(
    "fields, expected",
    [
        (dict(magic=b"LTO2"), "bad magic"),
        (dict(version=2), "envelope version 2"),
        (dict(kind=2), "kind 2, expected 1"),
        (dict(codec=7), "unknown codec 7"),
        (dict(flags=1), "unknown flags"),
        (dict(length=(1 << 30) + 1), "exceeds"),
        (dict(length=len(PAYLOAD) + 1), "zstd frame declares"),
        (dict(digest=bytes(32)), "payload digest mismatch"),
    ],
)
def test_each_header_check(fields, expected):
    assert expected in _problem("k", _with_header(_stored(), **fields))


def test_uncompressed_length_mismatch():
    stored = _with_header(_stored(codec=Codec.NONE), length=len(PAYLOAD) - 1)
    assert "header says" in _problem("k", stored)


def test_corrupt_zstd_body():
    stored = bytearray(_stored())
    stored[-3] ^= 0xFF
    assert "zstd" in _problem("k", bytes(stored), digest=None) or "digest" in _problem(
        "k", bytes(stored), digest=None
    )


def test_trailing_garbage_after_the_frame():
    assert "zstd decompression failed" in _problem("k", _stored() + b"xx", digest=None)


def test_codec_none_payload_is_zero_copy_view():
    stored = _stored(codec=Codec.NONE)
    payload = decode_object("k", stored, ObjectKind.SEGMENT, None)
    assert isinstance(payload, memoryview)
    assert payload.obj is stored


def test_encode_rejects_oversized_payload_lengths():
    class Huge(bytes):
        def __len__(self):
            return (1 << 30) + 1

    with pytest.raises(ValueError):
        encode_object(ObjectKind.SEGMENT, Huge())


def test_kind_and_codec_are_validated_on_encode():
    with pytest.raises(ValueError):
        encode_object(9, b"x")
    with pytest.raises(ValueError):
        encode_object(ObjectKind.SEGMENT, b"x", 5)


def test_large_payload_uses_parallel_hash_path():
    payload = bytes(range(256)) * (40 * 1024)  # 10 MiB
    stored = encode_object(ObjectKind.SNAPSHOT_CHUNK, payload)
    assert (
        bytes(decode_object("k", stored, ObjectKind.SNAPSHOT_CHUNK, digest_hex(stored))) == payload
    )
