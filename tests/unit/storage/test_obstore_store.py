"""The obstore-backed store: the protocol's outcomes, pages and deletes, on real stores."""

from __future__ import annotations

import itertools
import os

import pytest
from obstore.exceptions import AlreadyExistsError, PreconditionError

from litetool.errors import CorruptObject, ObjectNotFound
from litetool.storage import parse_location
from litetool.storage.obstore_store import ObstoreStore, open_store
from litetool.storage.store import (
    ALREADY_EXISTS,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    WriteTag,
    list_objects,
)

_names = itertools.count()


def _memory() -> ObstoreStore:
    store = open_store(parse_location(f"memory://obstore-store-{next(_names)}"))
    assert isinstance(store, ObstoreStore)
    return store


async def test_conditional_outcomes_are_the_protocols_not_obstores():
    store = _memory()
    tag = await store.put("k", b"1")
    with pytest.raises(ALREADY_EXISTS) as exists:
        await store.put("k", b"2", expected=(ALREADY_EXISTS,))
    assert not isinstance(exists.value, AlreadyExistsError)
    assert isinstance(exists.value.__cause__, AlreadyExistsError)
    with pytest.raises(PRECONDITION_FAILED) as lost:
        await store.put("k", b"2", mode=WriteTag('"stale"', None), expected=(PRECONDITION_FAILED,))
    assert not isinstance(lost.value, PreconditionError)
    assert (await store.put("k", b"3", mode=tag)).e_tag is not None


async def test_a_local_directory_has_no_compare_and_swap(tmp_path):
    store = open_store(parse_location(str(tmp_path)))
    store.open(create=True)
    await store.put("k", b"1")
    with pytest.raises(NOT_IMPLEMENTED):
        await store.put("k", b"2", mode=WriteTag('"x"', None), expected=(NOT_IMPLEMENTED,))


async def test_a_local_read_is_bounded_and_says_what_is_not_a_file(tmp_path):
    store = open_store(parse_location(str(tmp_path)))
    store.open(create=True)
    await store.put("objects/k", b"12345")
    data, meta = await store.get("objects/k", max_bytes=5)
    assert bytes(data) == b"12345" and meta.size == 5 and meta.e_tag is not None
    with pytest.raises(CorruptObject, match="more than the 4 allowed"):
        await store.get("objects/k", max_bytes=4)
    os.mkfifo(tmp_path / "objects" / "fifo")
    with pytest.raises(CorruptObject, match="FIFO"):
        await store.get("objects/fifo", max_bytes=5)
    with pytest.raises(ObjectNotFound):
        await store.get("objects/missing", max_bytes=5)


async def test_a_listing_comes_in_pages_of_at_most_a_thousand():
    store = _memory()
    for index in range(1001):
        await store.put(f"p/{index:04}", b"")
    sizes = [len(page) async for page in store.list_pages("p")]
    assert sorted(sizes) == [1, 1000]
    assert len([meta async for meta in list_objects(store, "")]) == 1001


async def test_deleting_missing_keys_is_fine_on_a_local_directory(tmp_path):
    store = open_store(parse_location(str(tmp_path)))
    store.open(create=True)
    await store.put("a", b"x")
    await store.put("b", b"x")
    await store.delete(["a", "missing", "b"])
    assert [meta async for meta in list_objects(store, "")] == []
