"""Key builders and the key parser (docs/FORMAT.md section 1)."""

import pytest

from litetool.errors import ReplicaFormatError
from litetool.storage import (
    LEASE_KEY,
    MARKER_KEY,
    KeyKind,
    compacted_record_key,
    index_record_key,
    new_generation_id,
    object_key,
    parse_generation_time_ms,
    parse_key,
)
from litetool.storage.format.keys import try_parse_key

DIGEST = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
GENERATION = "019ab8fa42001234"


def test_object_key_fans_out_by_first_two_digits():
    assert object_key(DIGEST) == f"objects/ab/{DIGEST}"
    parsed = parse_key(object_key(DIGEST))
    assert (parsed.kind, parsed.digest) == (KeyKind.OBJECT, DIGEST)


def test_record_keys_are_fixed_width_hex():
    assert index_record_key(GENERATION, 0) == f"generations/{GENERATION}/index/0000000000000000"
    assert compacted_record_key(GENERATION, 255).endswith("/compacted/00000000000000ff")
    parsed = parse_key(index_record_key(GENERATION, 2**64 - 1))
    assert (parsed.kind, parsed.generation, parsed.seq) == (
        KeyKind.INDEX_RECORD,
        GENERATION,
        2**64 - 1,
    )
    assert parse_key(compacted_record_key(GENERATION, 7)).kind is KeyKind.COMPACTED_RECORD


def test_marker_and_lease():
    assert parse_key(MARKER_KEY).kind is KeyKind.MARKER
    assert parse_key(LEASE_KEY).kind is KeyKind.LEASE


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/litetool-replica.json",
        "litetool-replica.json/",
        "objects/ab/" + DIGEST.upper(),
        "objects/cd/" + DIGEST,  # fan-out does not match the digest
        "objects/ab/" + DIGEST[:-1],
        "objects/ab/" + DIGEST + "0",
        "objects/ab/../" + DIGEST,
        "/objects/ab/" + DIGEST,
        "objects//" + DIGEST,
        "objects/ab/" + DIGEST + "\n",
        "objects/ab/" + DIGEST[:-1] + "\u0660",  # ARABIC-INDIC DIGIT ZERO
        f"generations/{GENERATION}/index/000000000000000",
        f"generations/{GENERATION}/index/00000000000000000",
        f"generations/{GENERATION}/index/000000000000000G",
        f"generations/{GENERATION}/other/0000000000000000",
        f"generations/{GENERATION}/index/../index/0000000000000000",
        f"generations/{GENERATION[:-1]}/index/0000000000000000",
        f"generations/{GENERATION.upper()}/index/0000000000000000",
        f"generations/{GENERATION}/index/0000000000000000/x",
        "generations/../objects",
        "lease.json.tmp",
    ],
)
def test_hostile_or_unknown_keys_are_rejected(key):
    with pytest.raises(ReplicaFormatError):
        parse_key(key)
    assert try_parse_key(key) is None


@pytest.mark.parametrize("value", [None, 1, b"lease.json"])
def test_non_string_keys_are_rejected(value):
    with pytest.raises(ReplicaFormatError):
        parse_key(value)


def test_builders_validate_their_inputs():
    with pytest.raises(ReplicaFormatError):
        object_key("xyz")
    with pytest.raises(ReplicaFormatError):
        index_record_key("nothex0000000000", 0)
    with pytest.raises(ReplicaFormatError):
        index_record_key(GENERATION, -1)
    with pytest.raises(ReplicaFormatError):
        index_record_key(GENERATION, True)
    with pytest.raises(ReplicaFormatError):
        compacted_record_key(GENERATION, 2**64)


def test_error_message_shows_hostile_key_safely():
    with pytest.raises(ReplicaFormatError) as info:
        parse_key("x" * 10_000 + "\n")
    assert len(info.value.message) < 200


def test_generation_ids_sort_by_creation_time():
    early = new_generation_id(1_000, 0xFFFF)
    late = new_generation_id(1_001, 0x0000)
    assert early < late
    assert parse_generation_time_ms(late) == 1_001
    assert new_generation_id(1_764_040_000_000, 0x1234) == "019ab8fa42001234"


def test_generation_id_is_random_by_default():
    ids = {new_generation_id(5) for _ in range(50)}
    assert len(ids) > 1
    assert all(parse_generation_time_ms(g) == 5 for g in ids)


@pytest.mark.parametrize("now_ms, suffix", [(-1, 0), (2**48, 0), (0, 0x10000), (0, -1)])
def test_generation_id_rejects_out_of_range_parts(now_ms, suffix):
    with pytest.raises(ValueError):
        new_generation_id(now_ms, suffix)
