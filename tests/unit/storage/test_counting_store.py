"""Request counting as a wrapper over a real store (memory and a local directory)."""

from __future__ import annotations

import itertools

import pytest

from litetool.errors import CorruptObject, ObjectNotFound
from litetool.storage import parse_location
from litetool.storage.counting_store import CountingStore
from litetool.storage.obstore_store import open_store
from litetool.storage.store import ALREADY_EXISTS, delete_all, list_objects

_names = itertools.count()


def _counting(url: str | None = None) -> CountingStore:
    return CountingStore(open_store(parse_location(url or f"memory://counting-{next(_names)}")))


async def test_puts_and_gets_count_requests_and_payload_bytes():
    store = _counting()
    await store.put("a", b"12345")
    data, _ = await store.get("a", max_bytes=10)
    assert bytes(data) == b"12345"
    counts = store.stats.snapshot()
    assert (counts["put"].requests, counts["put"].bytes) == (1, 5)
    assert (counts["get"].requests, counts["get"].bytes, counts["get"].failures) == (1, 5, 0)


async def test_asked_for_outcomes_are_not_failures_and_errors_are():
    store = _counting()
    await store.put("a", b"1")
    with pytest.raises(ALREADY_EXISTS):
        await store.put("a", b"2", expected=(ALREADY_EXISTS,))
    with pytest.raises(CorruptObject):
        await store.get("a", max_bytes=0)  # refused from its metadata: an answer
    with pytest.raises(ObjectNotFound):
        await store.head("missing")
    counts = store.stats.snapshot()
    assert (counts["put"].requests, counts["put"].failures) == (2, 0)
    assert (counts["get"].requests, counts["get"].failures, counts["get"].bytes) == (1, 0, 0)
    assert (counts["head"].requests, counts["head"].failures) == (1, 1)


async def test_a_listing_counts_one_request_per_page_and_the_last_answer(tmp_path):
    store = _counting(str(tmp_path))
    store.open(create=True)
    for name in ("a", "b", "c"):
        await store.put(f"p/{name}", b"x")
    assert sorted([meta.key async for meta in list_objects(store, "p")]) == ["p/a", "p/b", "p/c"]
    assert store.stats.snapshot()["list"].requests == 2  # one page, then the end


async def test_deletes_count_one_request_per_batch_and_none_for_no_keys(tmp_path):
    store = _counting(str(tmp_path))
    store.open(create=True)
    await store.put("k", b"x")
    assert await delete_all(store, []) == 0
    assert await delete_all(store, ["k", "already-gone"]) == 2
    assert store.stats.snapshot()["delete"].requests == 1
    assert [meta async for meta in list_objects(store, "")] == []


async def test_counting_stacks_on_another_counting_store():
    inner = _counting()
    outer = CountingStore(inner)
    await outer.put("k", b"abc")
    assert outer.stats.snapshot()["put"] == inner.stats.snapshot()["put"]
    assert outer.facts == inner.facts == {}
