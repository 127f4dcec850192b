"""The spool log: whatever a crash leaves, recovery keeps exactly the whole records."""

import os

from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.spool import (
    Spool,
    SpoolRecord,
    WalPosition,
    decode_records,
    encode_record,
)

records = st.lists(
    st.tuples(st.integers(1, 5), st.binary(max_size=300)), min_size=1, max_size=6
)


def build(batches):
    out, txid = [], 0
    for count, payload in batches:
        out.append(
            SpoolRecord(
                txid + 1, txid + count, 1000 + txid, WalPosition(b"h" * 32, 32 + txid, (txid, 7)),
                txid + count, payload,
            )
        )
        txid += count
    return out


@given(records)
def test_round_trip(batches):
    built = build(batches)
    data = b"".join(encode_record(r) for r in built)
    decoded, end = decode_records(data)
    assert decoded == built and end == len(data)


@given(records, st.data())
def test_truncation_keeps_whole_records_only(batches, data):
    built = build(batches)
    encoded = [encode_record(r) for r in built]
    blob = b"".join(encoded)
    cut = data.draw(st.integers(0, len(blob)))
    decoded, end = decode_records(blob[:cut])
    whole = 0
    boundary = 0
    for chunk in encoded:
        if boundary + len(chunk) > cut:
            break
        boundary += len(chunk)
        whole += 1
    assert decoded == built[:whole] and end == boundary


@given(records, st.data())
def test_corruption_never_yields_a_wrong_record(batches, data):
    built = build(batches)
    blob = bytearray(b"".join(encode_record(r) for r in built))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= 1 << data.draw(st.integers(0, 7))
    decoded, _ = decode_records(bytes(blob))
    assert decoded == built[: len(decoded)]  # a prefix of the truth, never garbage


def test_torn_append_is_cut_on_open(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    built = build([(2, b"a" * 100), (1, b"b" * 50)])
    for record in built:
        spool.append(record)
    spool.close()
    path = next((tmp_path / "log").iterdir())
    with open(path, "ab") as handle:
        handle.write(encode_record(build([(1, b"c" * 80)])[0])[:-7])  # a crash mid-append
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()
    assert reopened.last == built[-1]
    assert os.path.getsize(path) == sum(len(encode_record(r)) for r in built)
    assert [r.first_txid for r in reopened.records_after(0, max_bytes=1 << 30)] == [1, 3]
    assert [r.first_txid for r in reopened.records_after(2, max_bytes=1 << 30)] == [3]
