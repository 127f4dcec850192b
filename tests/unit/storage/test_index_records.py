"""Index record codec (docs/FORMAT.md section 5)."""

import json

import pytest
from storage_builders import GENERATION, digest_for, record, segment, snapshot

from litetool.errors import ReplicaFormatError
from litetool.storage import decode_record, encode_record

SPEC_EXAMPLE_V1 = {
    "format": 1,
    "generation": "019ab3c2d4e5f6a7",
    "seq": 0,
    "created_us": 1764040000000000,
    "writer": "host:pid:8 hex",
    "reason": "first run",
    "snapshots": [
        {
            "manifest": "a" * 64,
            "txid": 0,
            "time_us": 1764040000000000,
            "page_size": 4096,
            "page_count": 12,
            "bytes": 5120,
        }
    ],
    "segments": [
        {
            "object": "b" * 64,
            "first_txid": 1,
            "last_txid": 3,
            "bytes": 4200,
            "page_size": 4096,
            "frames": 5,
            "times_us": [1764040000100000, 1764040000105000, 1764040000107000],
            "db_pages": [12, 13, 13],
        }
    ],
}


# docs/FORMAT.md section 5: the format litetool writes.
SPEC_EXAMPLE = dict(
    SPEC_EXAMPLE_V1,
    format=2,
    segments=[
        {
            "object": "b" * 64,
            "first_txid": 1,
            "last_txid": 3,
            "bytes": 4200,
            "page_size": 4096,
            "frames": 5,
            "first_time_us": 1764040000100000,
            "last_time_us": 1764040000107000,
            "max_time_us": 1764040000107000,
            "db_pages": 13,
        }
    ],
)


def _encoded(document) -> bytes:
    return json.dumps(document).encode()


def _mutated(path, value=..., delete=False, example=SPEC_EXAMPLE):
    document = json.loads(json.dumps(example))
    target = document
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return _encoded(document)


def test_the_spec_example_decodes():
    decoded = decode_record(_encoded(SPEC_EXAMPLE))
    assert decoded.generation == "019ab3c2d4e5f6a7"
    assert decoded.reason == "first run"
    assert decoded.snapshots[0].stored_bytes == 5120
    assert decoded.record_format == 2
    entry = decoded.segments[0]
    assert (entry.first_txid, entry.last_txid, entry.frames) == (1, 3, 5)
    assert (entry.first_time_us, entry.last_time_us, entry.max_time_us, entry.db_pages) == (
        1764040000100000,
        1764040000107000,
        1764040000107000,
        13,
    )
    assert entry.detail is None  # per-transaction values live in the segment object
    assert decoded.covers is None and not decoded.compacted


def test_the_format_1_example_decodes_with_its_summary_derived():
    decoded = decode_record(_encoded(SPEC_EXAMPLE_V1))
    assert decoded.record_format == 1
    entry = decoded.segments[0]
    assert (entry.first_txid, entry.last_txid, entry.frames) == (1, 3, 5)
    assert list(entry.detail.times_us) == SPEC_EXAMPLE_V1["segments"][0]["times_us"]
    assert list(entry.detail.db_pages) == [12, 13, 13]
    assert (entry.first_time_us, entry.last_time_us, entry.max_time_us, entry.db_pages) == (
        1764040000100000,
        1764040000107000,
        1764040000107000,
        13,
    )
    # written again, it is format 2 with the same summary
    again = decode_record(encode_record(decoded))
    assert again.record_format == 2 and again.segments == decoded.segments


def test_a_format_1_compacted_record_covers_from_zero():
    compacted = dict(SPEC_EXAMPLE_V1, seq=4, covers=[0, 4])
    assert decode_record(_encoded(compacted)).covers == (0, 4)
    with pytest.raises(ReplicaFormatError, match=r"must be \[0, 4\] in format 1"):
        decode_record(_encoded(dict(compacted, covers=[2, 4])))


def test_round_trip_is_exact_and_compact():
    original = record(0, [snapshot(0, 10)], [segment(1, [11, 12])])
    payload = encode_record(original)
    assert decode_record(payload) == original
    assert b" " not in payload.replace(b"first run", b"")
    assert encode_record(decode_record(payload)) == payload


def test_compacted_record_round_trip():
    compacted = record(4, [snapshot(0, 10)], covers=(0, 4), reason="first run")
    assert decode_record(encode_record(compacted)).covers == (0, 4)
    later = record(9, [snapshot(0, 10)], covers=(5, 9), reason="first run")
    decoded = decode_record(encode_record(later))
    assert (decoded.covers, decoded.first_seq, decoded.seq) == ((5, 9), 5, 9)


def test_unknown_fields_are_ignored():
    document = dict(SPEC_EXAMPLE, future_field={"x": 1})
    document["segments"] = [dict(SPEC_EXAMPLE["segments"][0], also_new=True)]
    assert decode_record(_encoded(document)).seq == 0


@pytest.mark.parametrize(
    "path, value, match",
    [
        (["format"], 3, "format 3 is not supported"),
        (["format"], True, "format must be an integer"),
        (["seq"], -1, "seq must be in"),
        (["seq"], 1.0, "seq must be an integer"),
        (["seq"], True, "seq must be an integer"),
        (["generation"], "019AB3C2D4E5F6A7", "generation is invalid"),
        (["writer"], 5, "writer must be a string"),
        (["writer"], "w" * 300, "longer than"),
        (["reason"], None, "reason must be a string"),
        (["snapshots"], {}, "snapshots must be a list"),
        (["snapshots", 0], "x", r"snapshots\[0\] must be an object"),
        (["snapshots", 0, "manifest"], "a" * 63, r"snapshots\[0\].manifest is invalid"),
        (["snapshots", 0, "page_size"], 1000, "page_size is invalid"),
        (["snapshots", 0, "page_count"], 0, "page_count must be in"),
        (["segments", 0, "object"], "B" * 64, r"segments\[0\].object is invalid"),
        (["segments", 0, "last_txid"], 0, "last_txid must be in"),
        (["segments", 0, "frames"], 2, "frames must be in 3"),
        (["segments", 0, "bytes"], -5, "bytes must be in"),
        (["segments", 0, "db_pages"], 0, r"segments\[0\].db_pages must be in"),
        (["segments", 0, "first_time_us"], "1", r"first_time_us must be an integer"),
        (["segments", 0, "max_time_us"], 1764040000100000, "max_time_us must be in"),
        (["covers"], [0, 1], r"covers must be \[lo, 0\]"),
        (["covers"], [1, 0], "covers must be"),
        (["covers"], [0], "covers must be"),
    ],
)
def test_mistyped_fields_are_rejected_with_the_field_named(path, value, match):
    with pytest.raises(ReplicaFormatError, match=match):
        decode_record(_mutated(path, value))


@pytest.mark.parametrize(
    "path, value, match",
    [
        (["segments", 0, "times_us"], [1, 2], "has 2 entries for 3 transactions"),
        (["segments", 0, "db_pages"], [1, 2, 0], r"db_pages\[2\] must be an integer"),
        (["segments", 0, "times_us"], [1, 2, "3"], r"times_us\[2\]"),
        (["segments", 0, "frames"], 2, "frames must be in 3"),
    ],
)
def test_mistyped_format_1_fields_are_rejected(path, value, match):
    with pytest.raises(ReplicaFormatError, match=match):
        decode_record(_mutated(path, value, example=SPEC_EXAMPLE_V1))


def test_a_one_transaction_segment_has_one_time():
    one = dict(SPEC_EXAMPLE["segments"][0], last_txid=1, frames=1, last_time_us=1764040000100000)
    with pytest.raises(ReplicaFormatError, match="differs from the only transaction"):
        decode_record(_mutated(["segments"], [one]))


@pytest.mark.parametrize(
    "path",
    [
        ["format"],
        ["seq"],
        ["generation"],
        ["created_us"],
        ["writer"],
        ["snapshots"],
        ["segments"],
        ["snapshots", 0, "txid"],
        ["segments", 0, "first_time_us"],
        ["segments", 0, "last_time_us"],
        ["segments", 0, "max_time_us"],
        ["segments", 0, "db_pages"],
    ],
)
def test_missing_fields_are_rejected(path):
    with pytest.raises(ReplicaFormatError, match="is missing"):
        decode_record(_mutated(path, delete=True))


def test_a_format_1_segment_without_its_times_is_rejected():
    with pytest.raises(ReplicaFormatError, match="times_us is missing"):
        decode_record(_mutated(["segments", 0, "times_us"], delete=True, example=SPEC_EXAMPLE_V1))


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b"null", b"\xff\xfe", b'{"format": NaN}', b"[" * 100_000, b"{" + b"1" * 5000],
)
def test_garbage_is_a_format_error(payload):
    with pytest.raises(ReplicaFormatError):
        decode_record(payload)


def test_encode_refuses_an_invalid_record():
    with pytest.raises(ReplicaFormatError):
        encode_record(record(0, [snapshot(0, 1)], generation="nope"))
    bad_segment = segment(1, [1, 2])
    object.__setattr__(bad_segment, "frames", 1)
    with pytest.raises(ReplicaFormatError):
        encode_record(record(0, [snapshot(0, 1)], [bad_segment]))


def test_digest_helper_is_valid():
    assert len(digest_for("x")) == 64
    assert GENERATION == "019ab8fa4200abcd"
