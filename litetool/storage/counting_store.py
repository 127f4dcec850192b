"""Request counting as a :class:`~litetool.storage.store.Store` that wraps any store.

``CountingStore(inner, stats)`` passes every request to *inner* and counts it
in :class:`~litetool.storage.stats.RequestStats` by kind: a failure unless it
ended in an outcome the caller asked for (``expected``; a ``get`` refused as
``CorruptObject`` is the store's answer too), with the payload bytes sent (put)
or received (get). A listing counts one request per page, the last (empty)
answer included; a delete one per call (up to ``DELETE_BATCH`` keys).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from litetool.errors import CorruptObject
from litetool.storage.stats import RequestStats
from litetool.storage.store import Buffer, ObjectMeta, Store, WriteTag


@dataclass(slots=True)
class _Counted:
    nbytes: int = 0


class CountingStore:
    """*inner*, with every request counted in *stats*."""

    def __init__(self, inner: Store, stats: RequestStats | None = None) -> None:
        self.inner = inner
        self.stats = stats if stats is not None else RequestStats()

    def __repr__(self) -> str:
        return f"CountingStore({self.inner!r})"

    @property
    def facts(self) -> Mapping[str, str]:
        return self.inner.facts

    def open(self, *, create: bool = False) -> None:
        self.inner.open(create=create)

    @contextmanager
    def _request(self, kind: str, expected: tuple = ()) -> Iterator[_Counted]:
        """Count one request; *expected* outcomes are not failures."""
        counted = _Counted()
        try:
            yield counted
        except expected:
            self.stats.record(kind, nbytes=counted.nbytes)
            raise
        except BaseException:
            self.stats.record(kind, nbytes=counted.nbytes, failed=True)
            raise
        self.stats.record(kind, nbytes=counted.nbytes)

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        mode: str | WriteTag = "create",
        expected: tuple[type[BaseException], ...] = (),
    ) -> WriteTag:
        with self._request("put", expected) as counted:
            counted.nbytes = len(data)
            return await self.inner.put(key, data, mode=mode, expected=expected)

    async def get(self, key: str, *, max_bytes: int) -> tuple[Buffer, ObjectMeta]:
        with self._request("get", (CorruptObject,)) as counted:
            data, meta = await self.inner.get(key, max_bytes=max_bytes)
            counted.nbytes = len(data)
        return data, meta

    async def head(self, key: str) -> ObjectMeta:
        with self._request("head"):
            return await self.inner.head(key)

    async def list_pages(self, prefix: str) -> AsyncIterator[Sequence[ObjectMeta]]:
        pages = aiter(self.inner.list_pages(prefix))
        while True:
            try:
                with self._request("list", (StopAsyncIteration,)):
                    page = await anext(pages)
            except StopAsyncIteration:
                return
            yield page

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._request("delete"):
            await self.inner.delete(keys)
