"""Properties of the object envelope: round trips, and no corruption yields a wrong payload."""

from hypothesis import given, settings
from hypothesis import strategies as st

from litetool.errors import CorruptObject
from litetool.storage import Codec, ObjectKind, decode_object, digest_hex, encode_object

kinds = st.sampled_from(list(ObjectKind))
codecs = st.sampled_from(list(Codec))
payloads = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=16), st.integers(1, 300)),
)


@given(kinds, codecs, payloads)
def test_round_trip(kind, codec, payload):
    stored = encode_object(kind, payload, codec)
    assert bytes(decode_object("k", stored, kind, digest_hex(stored))) == payload
    assert bytes(decode_object("k", stored, kind, None)) == payload


def _outcome(stored, kind, digest):
    try:
        return bytes(decode_object("k", stored, kind, digest))
    except CorruptObject:
        return None


@given(kinds, codecs, payloads, st.data())
def test_any_single_bit_flip_is_detected(kind, codec, payload, data):
    stored = encode_object(kind, payload, codec)
    bit = data.draw(st.integers(0, len(stored) * 8 - 1), label="bit")
    flipped = bytearray(stored)
    flipped[bit // 8] ^= 1 << (bit % 8)
    flipped = bytes(flipped)
    # Named objects: the name check catches every flip.
    assert _outcome(flipped, kind, digest_hex(stored)) is None
    # Index records have no digest in their key: the payload digest must still make
    # sure that nothing but the original payload can come out.
    assert _outcome(flipped, kind, None) in (None, payload)


@settings(max_examples=20)
@given(kinds, codecs, st.binary(max_size=64))
def test_every_bit_flip_of_small_objects_exhaustively(kind, codec, payload):
    stored = encode_object(kind, payload, codec)
    digest = digest_hex(stored)
    for bit in range(len(stored) * 8):
        flipped = bytearray(stored)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert _outcome(bytes(flipped), kind, digest) is None
        assert _outcome(bytes(flipped), kind, None) in (None, payload)


@given(kinds, codecs, payloads, st.data())
def test_truncation_and_extension_are_detected(kind, codec, payload, data):
    stored = encode_object(kind, payload, codec)
    cut = data.draw(st.integers(0, len(stored) - 1), label="cut")
    assert _outcome(stored[:cut], kind, digest_hex(stored)) is None
    assert _outcome(stored[:cut], kind, None) is None
    extra = data.draw(st.binary(min_size=1, max_size=8), label="extra")
    assert _outcome(stored + extra, kind, None) is None


@given(kinds, codecs, payloads, payloads)
def test_renamed_objects_are_detected(kind, codec, payload_a, payload_b):
    stored_a = encode_object(kind, payload_a, codec)
    stored_b = encode_object(kind, payload_b, codec)
    if stored_a != stored_b:
        assert _outcome(stored_a, kind, digest_hex(stored_b)) is None


@given(kinds, kinds, payloads)
def test_kind_confusion_is_detected(kind, expected, payload):
    stored = encode_object(kind, payload)
    outcome = _outcome(stored, expected, digest_hex(stored))
    assert outcome == (payload if kind == expected else None)


@given(st.binary(max_size=512), kinds)
def test_arbitrary_bytes_raise_only_corrupt_object(stored, kind):
    _outcome(stored, kind, None)  # anything but CorruptObject propagates and fails
    assert _outcome(stored, kind, digest_hex(stored[:-1] or b"x")) is None
