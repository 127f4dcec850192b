"""What litetool asks of the storage behind a replica root: the ``Store`` protocol.

Every request litetool makes of a replica goes through a :class:`Store`, one
method per kind of request. Implementations:

- ``ObstoreStore`` (``obstore_store.py``): S3, GCS, Azure, local directories
  and memory, through obstore; built by ``open_store``;
- wrappers that implement the same protocol over any store and stack:
  ``CountingStore`` (``counting_store.py``) counts requests for metrics and
  ``status``. An encrypting layer, or another backend (SFTP), is one more.

The contract every implementation keeps:

- callers only ever see litetool errors (``ObjectNotFound``, ``CorruptObject``,
  ``StorageError`` and its kinds), plus the conditional-write outcomes they
  ask for by name in ``expected`` (:data:`ALREADY_EXISTS`,
  :data:`PRECONDITION_FAILED`, :data:`NOT_IMPLEMENTED`), which are answers,
  not failures;
- reads are bounded: an object larger than ``max_bytes`` is ``CorruptObject``
  from its metadata, before its body is read;
- keys are raw in listings: callers validate them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

Buffer = bytes | bytearray | memoryview

#: The most keys one :meth:`Store.delete` takes (S3's DeleteObjects takes at most 1000).
DELETE_BATCH = 1000


class AlreadyExists(Exception):
    """``put(mode="create")`` found the key taken."""


class PreconditionFailed(Exception):
    """``put(mode=WriteTag)`` found another version: the compare-and-swap lost."""


# Conditional-write outcomes that callers ask for by name. NOT_IMPLEMENTED: a
# compare-and-swap on a store that has none (a local directory).
ALREADY_EXISTS = AlreadyExists
PRECONDITION_FAILED = PreconditionFailed
NOT_IMPLEMENTED = NotImplementedError


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    key: str
    size: int
    last_modified: datetime
    e_tag: str | None
    version: str | None

    @property
    def last_modified_us(self) -> int:
        return int(self.last_modified.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class WriteTag:
    """What a write returned: the ETag/version used for compare-and-swap."""

    e_tag: str | None
    version: str | None


class Store(Protocol):
    """Access to one replica root (see the module docstring)."""

    @property
    def facts(self) -> Mapping[str, str]:
        """How the store is configured, for the log (S3: endpoint, region and where
        the credentials come from); never a secret. Empty before :meth:`open`."""
        ...

    def open(self, *, create: bool = False) -> None:
        """Build the client now (``create`` makes a missing local root). No request is
        made; a configuration that cannot work (S3 without any credentials, say) is a
        ConfigError here. Requests open the store themselves when needed."""
        ...

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        mode: str | WriteTag = "create",
        expected: tuple[type[BaseException], ...] = (),
    ) -> WriteTag:
        """Write *data*. ``mode`` is "create", "overwrite" or a WriteTag (compare-and-swap)."""
        ...

    async def get(self, key: str, *, max_bytes: int) -> tuple[Buffer, ObjectMeta]:
        """Read a whole object of at most *max_bytes* (CorruptObject if larger)."""
        ...

    async def head(self, key: str) -> ObjectMeta: ...

    def list_pages(self, prefix: str) -> AsyncIterator[Sequence[ObjectMeta]]:
        """Every object below *prefix*, a page (one request) at a time."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete *keys*, at most :data:`DELETE_BATCH` of them, in one request where
        the store has bulk deletes; missing keys are fine."""
        ...


async def list_objects(store: Store, prefix: str) -> AsyncIterator[ObjectMeta]:
    """Every object below *prefix* (raw keys: callers validate them)."""
    async for page in store.list_pages(prefix):
        for meta in page:
            yield meta


async def delete_all(store: Store, keys: Iterable[str]) -> int:
    """Delete *keys*, :data:`DELETE_BATCH` at a time (missing ones are fine); returns
    how many were asked for."""
    keys = list(keys)
    for start in range(0, len(keys), DELETE_BATCH):
        await store.delete(keys[start : start + DELETE_BATCH])
    return len(keys)
