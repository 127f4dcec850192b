"""The index reader: listing record keys, views, and the known part of a damaged generation."""

from __future__ import annotations

import itertools

import pytest
from storage_builders import GENERATION, record, segment, snapshot

from litetool.errors import CorruptObject, ObjectNotFound, ReplicaFormatError
from litetool.storage import Replica, index_record_key
from litetool.storage.index import IndexReader, RecordRef, record_ref

_names = itertools.count()


@pytest.fixture
def replica():
    return Replica.open(f"memory://index-reader-{next(_names)}")


async def _publish(replica: Replica, count: int) -> None:
    """Records 0..count-1: a snapshot at txid 0, then one transaction per record."""
    await replica.publish_record(record(0, [snapshot(0, 100)]))
    for seq in range(1, count):
        await replica.publish_record(record(seq, [], [segment(seq, [100 + seq])]))


def test_record_ref_names_the_key_a_record_is_written_under():
    plain = record_ref(record(7))
    assert plain == RecordRef(7, 7, False, index_record_key(GENERATION, 7))
    compacted = record_ref(record(3, covers=(0, 3), reason="first run"))
    assert (compacted.first_seq, compacted.seq, compacted.compacted) == (0, 3, True)
    assert compacted.key.endswith("/compacted/0000000000000003-0000000000000000")


async def test_listing_ignores_keys_that_are_not_records(replica):
    await _publish(replica, 2)
    await replica.store.put(f"generations/{GENERATION}/index/not-a-seq", b"x")
    await replica.store.put(f"generations/{GENERATION}/stray", b"x")
    reader = IndexReader(replica.store, max_object_bytes=1 << 20, concurrency=2)
    listing = await reader.list_record_keys()
    assert list(listing) == [GENERATION]
    assert [ref.seq for ref in listing[GENERATION].refs] == [0, 1]
    assert set(listing[GENERATION].metas) == {ref.key for ref in listing[GENERATION].refs}


async def test_a_view_listed_before_a_compaction_loads_after_it(replica):
    await _publish(replica, 3)
    keys = (await replica.index.list_record_keys(GENERATION))[GENERATION]
    assert await replica.compact(GENERATION, now_us=5) == [2]
    await replica.store.delete([ref.key for ref in keys.refs])  # GC removed them
    index = await replica.index.load_view(GENERATION, keys)
    assert index.compacted_seq == 2 and index.last_txid == 2


async def test_a_view_takes_known_records_as_they_are_and_fetches_the_rest(replica):
    await _publish(replica, 3)
    keys = (await replica.index.list_record_keys(GENERATION))[GENERATION]
    first = await replica.index.fetch_view(GENERATION, keys)
    assert list(first) == [ref.key for ref in keys.view()]
    assert [r.seq for r in first.values()] == [0, 1, 2]
    known = {key: first[key] for key in list(first)[:2]}
    await replica.store.delete(list(known))  # not fetched again: their loss goes unseen
    again = await replica.index.fetch_view(GENERATION, keys, known)
    assert list(again) == list(first)
    assert all(again[key] is record for key, record in known.items())
    assert again[list(first)[2]] == first[list(first)[2]]


async def test_a_view_whose_record_vanished_is_fetched_from_a_new_listing(replica):
    await _publish(replica, 3)
    keys = (await replica.index.list_record_keys(GENERATION))[GENERATION]
    known = {
        keys.view()[0].key: (await replica.index.fetch_view(GENERATION, keys))[keys.view()[0].key]
    }
    assert await replica.compact(GENERATION, now_us=5) == [2]
    await replica.store.delete([ref.key for ref in keys.refs])  # GC removed them
    records = await replica.index.fetch_view(GENERATION, keys, known)
    fresh = (await replica.index.list_record_keys(GENERATION))[GENERATION]
    assert list(records) == [ref.key for ref in fresh.view()]
    assert [r.compacted for r in records.values()] == [True]


async def test_a_whole_generation_is_its_own_known_part(replica):
    await _publish(replica, 3)
    [part] = await replica.index.load_known_parts()
    assert part.generation == GENERATION and part.error is None and part.key == ""
    assert part.index is not None and part.index.last_txid == 2


async def test_the_known_part_ends_before_a_corrupt_record(replica):
    await _publish(replica, 4)
    key = index_record_key(GENERATION, 2)
    data, _ = await replica.store.get(key, max_bytes=1 << 20)
    await replica.store.put(key, bytes(data)[:-3], mode="overwrite")
    [part] = await replica.index.load_known_parts()
    assert part.key == key and isinstance(part.error, CorruptObject)
    assert part.index is not None and part.index.last_txid == 1


async def test_the_known_part_ends_before_a_record_that_breaks_the_view(replica):
    await _publish(replica, 2)
    # txid 5 does not follow txid 1: record 2 breaks the rules of the view
    await replica.publish_record(record(2, [], [segment(5, [105])]))
    with pytest.raises(ReplicaFormatError):
        await replica.index.load_generation(GENERATION)
    [part] = await replica.index.load_known_parts()
    assert part.key == index_record_key(GENERATION, 2)
    assert isinstance(part.error, ReplicaFormatError) and part.key in part.error.message
    assert part.index is not None and part.index.last_txid == 1


async def test_a_missing_first_record_leaves_no_known_part(replica):
    await _publish(replica, 3)
    await replica.store.delete([index_record_key(GENERATION, 0)])
    [part] = await replica.index.load_known_parts()
    assert part.index is None
    assert part.key == index_record_key(GENERATION, 0)
    assert isinstance(part.error, ObjectNotFound)
