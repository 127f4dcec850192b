"""Properties of the key builders and parser."""

from hypothesis import given
from hypothesis import strategies as st

from litetool.storage import (
    KeyKind,
    compacted_record_key,
    index_record_key,
    new_generation_id,
    object_key,
    parse_generation_time_ms,
    parse_key,
)
from litetool.storage.format.keys import try_parse_key

hex_digits = "0123456789abcdef"
digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
generations = st.binary(min_size=8, max_size=8).map(bytes.hex)
seqs = st.integers(0, 2**64 - 1)


def _rebuild(parsed):
    if parsed.kind is KeyKind.OBJECT:
        return object_key(parsed.digest)
    if parsed.kind is KeyKind.INDEX_RECORD:
        return index_record_key(parsed.generation, parsed.seq)
    if parsed.kind is KeyKind.COMPACTED_RECORD:
        return compacted_record_key(parsed.generation, parsed.seq, parsed.first_seq)
    return parsed.key


@given(digests)
def test_object_keys_round_trip(digest):
    parsed = parse_key(object_key(digest))
    assert parsed.digest == digest and _rebuild(parsed) == object_key(digest)


@given(generations, seqs)
def test_record_keys_round_trip(generation, seq):
    for build, kind in (
        (index_record_key, KeyKind.INDEX_RECORD),
        (compacted_record_key, KeyKind.COMPACTED_RECORD),
    ):
        parsed = parse_key(build(generation, seq))
        assert (parsed.kind, parsed.generation, parsed.seq) == (kind, generation, seq)


@given(generations, seqs, st.data())
def test_compacted_keys_of_a_range_round_trip(generation, seq, data):
    first_seq = data.draw(st.integers(0, seq))
    key = compacted_record_key(generation, seq, first_seq)
    parsed = parse_key(key)
    assert (parsed.kind, parsed.seq, parsed.first_seq) == (KeyKind.COMPACTED_RECORD, seq, first_seq)
    assert parse_key(compacted_record_key(generation, seq)).first_seq is None  # format 1
    backwards = f"generations/{generation}/compacted/{first_seq:016x}-{seq:016x}"
    assert (try_parse_key(backwards) is None) == (first_seq < seq)


@given(st.text(max_size=120))
def test_accepted_keys_are_exactly_what_the_builders_make(key):
    parsed = try_parse_key(key)
    if parsed is not None:
        assert _rebuild(parsed) == key


key_alphabet = st.sampled_from(
    list(hex_digits) + list("/.gGxX-_ \n\\é٠") + ["..", "objects", "generations"]
)


@given(st.lists(key_alphabet, max_size=100).map("".join))
def test_hostile_keys_built_from_near_misses(key):
    parsed = try_parse_key(key)
    if parsed is not None:
        assert _rebuild(parsed) == key
        assert ".." not in key and not key.startswith("/") and key.isascii()


@given(digests, st.data())
def test_any_single_character_edit_of_a_valid_key_is_rejected_or_valid(digest, data):
    key = object_key(digest)
    position = data.draw(st.integers(0, len(key) - 1))
    replacement = data.draw(st.characters())
    edited = key[:position] + replacement + key[position + 1 :]
    parsed = try_parse_key(edited)
    assert parsed is None or _rebuild(parsed) == edited
    assert try_parse_key(key[:position] + key[position + 1 :]) is None
    assert try_parse_key(key[:position] + replacement + key[position:]) is None


@given(
    st.integers(0, 2**48 - 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**48 - 1),
    st.integers(0, 0xFFFF),
)
def test_generation_ids_sort_like_their_times(t1, r1, t2, r2):
    a, b = new_generation_id(t1, r1), new_generation_id(t2, r2)
    assert parse_generation_time_ms(a) == t1
    if t1 < t2:
        assert a < b
