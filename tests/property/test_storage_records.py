"""Properties of index records, manifests and generation indexes."""

import json

from hypothesis import given
from hypothesis import strategies as st

from litetool.errors import ReplicaFormatError
from litetool.storage import (
    DetailNeeded,
    GenerationIndex,
    IndexRecord,
    SegmentEntry,
    SnapshotEntry,
    SnapshotManifest,
    decode_manifest,
    decode_record,
    encode_manifest,
    encode_record,
)
from litetool.storage.format.generation import plan_compaction, walk_view

digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
generations = st.binary(min_size=8, max_size=8).map(bytes.hex)
page_sizes = st.sampled_from([512, 1024, 4096, 65536])
i64 = st.integers(-(2**63), 2**63 - 1)
u32_positive = st.integers(1, 2**32 - 2)  # SQLite's largest page number
txids = st.integers(0, 2**40)
text = st.text(max_size=40)


@st.composite
def snapshot_entries(draw, page_size=None):
    return SnapshotEntry(
        manifest_digest=draw(digests),
        txid=draw(txids),
        time_us=draw(i64),
        page_size=page_size or draw(page_sizes),
        page_count=draw(u32_positive),
        stored_bytes=draw(st.integers(0, 2**50)),
    )


@st.composite
def segment_entries(draw, first_txid=None, page_size=None):
    count = draw(st.integers(1, 5))
    first = draw(txids) if first_txid is None else first_txid
    return SegmentEntry.create(
        digest=draw(digests),
        first_txid=first,
        stored_bytes=draw(st.integers(0, 2**40)),
        page_size=page_size or draw(page_sizes),
        frames=draw(st.integers(count, count + 100)),
        times_us=draw(st.lists(i64, min_size=count, max_size=count)),
        db_pages=draw(st.lists(u32_positive, min_size=count, max_size=count)),
    )


@st.composite
def records(draw):
    seq = draw(st.integers(0, 2**64 - 1))
    compacted = draw(st.booleans())
    first_seq = draw(st.integers(0, seq))
    return IndexRecord(
        generation=draw(generations),
        seq=seq,
        created_us=draw(i64),
        writer=draw(text),
        snapshots=tuple(draw(st.lists(snapshot_entries(), max_size=3))),
        segments=tuple(draw(st.lists(segment_entries(), max_size=3))),
        reason=draw(st.none() | text),
        covers=(first_seq, seq) if compacted else None,
    )


@given(records())
def test_record_round_trip(record):
    payload = encode_record(record)
    assert decode_record(payload) == record
    assert encode_record(decode_record(payload)) == payload


@st.composite
def manifests(draw):
    page_size = draw(page_sizes)
    page_count = draw(st.integers(1, 5000))
    chunk_size = page_size * draw(st.integers(1, 64))
    count = -(-(page_size * page_count) // chunk_size)
    return SnapshotManifest(
        txid=draw(txids),
        time_us=draw(i64),
        page_size=page_size,
        page_count=page_count,
        chunk_size=chunk_size,
        chunks=tuple(draw(st.lists(digests, min_size=count, max_size=count))),
    )


@given(manifests())
def test_manifest_round_trip(manifest):
    payload = encode_manifest(manifest)
    assert decode_manifest(payload) == manifest
    assert sum(manifest.chunk_length(i) for i in range(len(manifest.chunks))) == (
        manifest.image_size
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_arbitrary_json_is_a_record_or_a_format_error(value):
    for decode in (decode_record, decode_manifest):
        try:
            decode(json.dumps(value).encode())
        except ReplicaFormatError:
            pass


@given(records(), st.data())
def test_any_field_replaced_is_rejected_or_still_valid(record, data):
    document = json.loads(encode_record(record))
    path = []
    target = document
    while True:
        key = data.draw(
            st.sampled_from(sorted(target))
            if isinstance(target, dict)
            else st.integers(0, len(target) - 1),
            label="key",
        )
        path.append(key)
        child = target[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans(), label="deeper"):
            target = child
            continue
        target[key] = data.draw(json_values, label="value")
        break
    try:
        decoded = decode_record(json.dumps(document).encode())
    except ReplicaFormatError:
        return
    assert encode_record(decoded)  # whatever decodes is a valid record


@st.composite
def generations_of_records(draw):
    """A valid generation: snapshot at 0, contiguous segments spread over records, and
    maybe later snapshots in records of their own (as the sync loop writes them)."""
    generation = draw(generations)
    page_size = draw(page_sizes)
    records_out = []
    next_txid = 1
    times = {0: draw(i64)}
    first = SnapshotEntry(draw(digests), 0, times[0], page_size, 1, 1)
    for seq in range(draw(st.integers(1, 8))):
        segments = []
        snapshots = (first,) if seq == 0 else ()
        if seq and draw(st.integers(0, 4)) == 0:
            txid = next_txid - 1
            snapshots = (SnapshotEntry(draw(digests), txid, draw(i64), page_size, 1, 1),)
        else:
            for _ in range(draw(st.integers(0, 3))):
                entry = draw(segment_entries(first_txid=next_txid, page_size=page_size))
                for offset, time_us in enumerate(entry.detail.times_us):
                    times[next_txid + offset] = time_us
                next_txid = entry.last_txid + 1
                segments.append(entry)
        records_out.append(
            IndexRecord(
                generation,
                seq,
                seq,
                "w",
                snapshots,
                tuple(segments),
                reason="first run" if seq == 0 else None,
            )
        )
    return generation, records_out, times


def _summaries(records_list):
    """The records as a format-2 reader sees them (no per-transaction detail)."""
    return [decode_record(encode_record(record)) for record in records_list]


@given(generations_of_records(), st.randoms())
def test_generation_index_answers_every_commit_time(case, random):
    generation, records_list, times = case
    shuffled = list(records_list)
    random.shuffle(shuffled)
    index = GenerationIndex.from_records(generation, shuffled)
    assert index.last_txid == max(times)
    assert {txid: index.commit_time_us(txid) for txid in times} == times
    assert index.next_seq == len(records_list)
    compacted = IndexRecord(
        generation,
        index.last_seq,
        0,
        "c",
        index.snapshots,
        index.segments,
        reason="first run",
        covers=(0, index.last_seq),
    )
    again = GenerationIndex.from_records(generation, [*records_list, compacted])
    assert again.segments == index.segments and again.records == (compacted,)
    assert encode_record(decode_record(encode_record(compacted))) == encode_record(compacted)


@given(generations_of_records())
def test_summaries_answer_or_name_the_segment_that_does(case):
    generation, records_list, times = case
    full = GenerationIndex.from_records(generation, records_list)
    index = GenerationIndex.from_records(generation, _summaries(records_list))
    for txid, time_us in times.items():
        try:
            assert index.commit_time_us(txid) == time_us
        except DetailNeeded as need:
            entry = need.entry
            assert entry.first_txid < txid < entry.last_txid  # boundaries never need it
            detail = full.segment_for(txid).detail
            assert index.with_detail(entry, detail).commit_time_us(txid) == time_us


@given(generations_of_records(), st.integers(1, 12), st.data())
def test_compacting_at_any_moment_keeps_the_generation(case, max_entries, data):
    generation, records_list, _ = case
    stored = list(records_list)
    cuts = data.draw(st.lists(st.integers(1, len(records_list)), max_size=4), label="cuts")
    for cut in sorted(cuts):
        # the compactor sees the store as it was when records 0..cut-1 existed
        view = walk_view([record for record in stored if record.seq < cut])
        start = max((i for i, r in enumerate(view) if r.compacted), default=0)
        planned = plan_compaction(view[start:], writer="c", created_us=0, max_entries=max_entries)
        for record in planned:
            assert record.compacted and record.reason == "first run"
            # a compacted record names a snapshot only as its first entry
            if record.snapshots and record.segments:
                assert record.segments[0].first_txid == record.snapshots[-1].txid + 1
            assert len(record.snapshots) <= 1 or record.first_seq == 0
        stored += [decode_record(encode_record(record)) for record in planned]
    original = GenerationIndex.from_records(generation, records_list)
    index = GenerationIndex.from_records(generation, stored)
    assert index.segments == original.segments and index.snapshots == original.snapshots
    assert index.next_seq == original.next_seq and index.reason == original.reason


@given(generations_of_records(), st.data())
def test_dropping_a_middle_segment_breaks_contiguity(case, data):
    generation, records_list, _ = case
    segments = [s for r in records_list for s in r.segments]
    if len(segments) < 2:
        return
    dropped = data.draw(st.sampled_from(segments[:-1]))
    broken = [
        IndexRecord(
            r.generation,
            r.seq,
            r.created_us,
            r.writer,
            r.snapshots,
            tuple(s for s in r.segments if s is not dropped),
            r.reason,
        )
        for r in records_list
    ]
    try:
        GenerationIndex.from_records(generation, broken)
        raise AssertionError("a gap in the segments was accepted")
    except ReplicaFormatError:
        pass
