"""One replica root's object store: every obstore call goes through here.

``Store`` wraps an obstore store built lazily from a :class:`Location`. Each
method is one kind of request, runs inside ``translate_errors`` (so callers
only ever see litetool errors, plus the conditional-write outcomes they ask
for in ``expected``) and is counted in :class:`RequestStats`. Reads are
bounded: an object larger than ``max_bytes`` is refused from its metadata
before its body is read.

Reads from a local directory (``file://``) do not go through obstore: a key
there is a path, and a replica directory can hold what no object store can.
:func:`read_local_file` opens it without blocking and without following a
final symbolic link, and reads only a regular file inside the root: a FIFO
(whose open would wait for a writer forever), a device, a socket or a
directory in place of an object, or a symbolic link that leads outside the
replica, is ``CorruptObject`` naming the key.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from obstore.exceptions import AlreadyExistsError, PreconditionError

from litetool.errors import CorruptObject, ObjectNotFound, StorageError
from litetool.storage.location import Location, open_store
from litetool.storage.obstore_errors import translate_errors
from litetool.storage.stats import RequestStats

# Conditional-write outcomes that callers ask for by name.
ALREADY_EXISTS = AlreadyExistsError
PRECONDITION_FAILED = PreconditionError
NOT_IMPLEMENTED = NotImplementedError

# S3's DeleteObjects takes at most 1000 keys per request.
_DELETE_BATCH = 1000
_LIST_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    key: str
    size: int
    last_modified: datetime
    e_tag: str | None
    version: str | None

    @classmethod
    def from_obstore(cls, meta: dict[str, Any]) -> ObjectMeta:
        return cls(
            key=meta["path"],
            size=meta["size"],
            last_modified=meta["last_modified"],
            e_tag=meta.get("e_tag"),
            version=meta.get("version"),
        )

    @property
    def last_modified_us(self) -> int:
        return int(self.last_modified.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class WriteTag:
    """What a write returned: the ETag/version used for compare-and-swap."""

    e_tag: str | None
    version: str | None

    def as_update_mode(self) -> dict[str, str]:
        # obstore rejects None values in an UpdateVersion dict.
        return {
            name: value
            for name, value in (("e_tag", self.e_tag), ("version", self.version))
            if value is not None
        }


@dataclass(slots=True)
class _Counted:
    nbytes: int = 0


class Store:
    """Counted, error-translated access to one replica root."""

    def __init__(self, location: Location, stats: RequestStats | None = None) -> None:
        self.location = location
        self.stats = stats if stats is not None else RequestStats()
        self._store: Any = None
        self._where = location.display_url
        self._secrets = location.secret_values()
        # How the store was configured (S3: endpoint, region, credentials source;
        # never a secret), for the log; filled by ``open``.
        self.facts: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Store({self._where!r})"

    def open(self, *, create: bool = False) -> None:
        """Build the obstore store now (``create`` makes a missing local root).
        No request is made; a configuration that cannot work (S3 without any
        credentials, say) is a ConfigError here."""
        if self._store is None:
            opened = open_store(self.location, create=create)
            self._store = opened.store
            # Secrets from the environment or an AWS profile are scrubbed too.
            self._secrets = opened.secrets
            self.facts = dict(opened.facts)

    @property
    def _obstore(self) -> Any:
        if self._store is None:
            self.open()
        return self._store

    @contextmanager
    def _request(
        self, kind: str, operation: str, key: str, expected: tuple = ()
    ) -> Iterator[_Counted]:
        """Translate errors and count one request; *expected* outcomes are not failures."""
        counted = _Counted()
        try:
            with translate_errors(
                operation,
                key,
                where=self._where,
                secrets=self._secrets,
                expected=expected,
                bucket=self.location.root,
            ):
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
        data: bytes | bytearray | memoryview,
        *,
        mode: str | WriteTag = "create",
        expected: tuple[type[BaseException], ...] = (),
    ) -> WriteTag:
        """Write *data*. ``mode`` is "create", "overwrite" or a WriteTag (compare-and-swap)."""
        obstore_mode = mode.as_update_mode() if isinstance(mode, WriteTag) else mode
        with self._request("put", "put", key, expected) as counted:
            counted.nbytes = len(data)
            result = await self._obstore.put_async(
                key, data, mode=obstore_mode, use_multipart=False
            )
        return WriteTag(result.get("e_tag"), result.get("version"))

    async def get(self, key: str, *, max_bytes: int) -> tuple[Any, ObjectMeta]:
        """Read a whole object of at most *max_bytes* (CorruptObject if larger)."""
        if self.location.scheme == "file":
            with self._request("get", "get", key, (CorruptObject,)) as counted:
                data, meta = await asyncio.to_thread(
                    read_local_file, self.location.root, key, max_bytes, self._where
                )
                counted.nbytes = len(data)
            return data, meta
        with self._request("get", "get", key, (CorruptObject,)) as counted:
            result = await self._obstore.get_async(key)
            meta = ObjectMeta.from_obstore(result.meta)
            if meta.size > max_bytes:
                raise CorruptObject(key, f"{meta.size} bytes is more than the {max_bytes} allowed")
            data = await result.bytes_async()
            counted.nbytes = len(data)
        if len(data) != meta.size:
            raise CorruptObject(key, f"read {len(data)} bytes, the store reports {meta.size}")
        return data, meta

    async def head(self, key: str) -> ObjectMeta:
        with self._request("head", "head", key):
            return ObjectMeta.from_obstore(await self._obstore.head_async(key))

    async def list(self, prefix: str) -> AsyncIterator[ObjectMeta]:
        """Every object below *prefix* (raw keys: callers validate them)."""
        stream = self._obstore.list(prefix or None, chunk_size=_LIST_PAGE)
        while True:
            try:
                with self._request("list", "list", prefix or "/", (StopAsyncIteration,)):
                    batch = await stream.__anext__()
            except StopAsyncIteration:
                return
            for meta in batch:
                yield ObjectMeta.from_obstore(meta)

    async def list_all(self, prefix: str) -> list[ObjectMeta]:
        return [meta async for meta in self.list(prefix)]

    async def delete(self, keys: Iterable[str]) -> int:
        """Delete *keys* (missing ones are fine); returns how many were asked for."""
        keys = list(keys)
        for start in range(0, len(keys), _DELETE_BATCH):
            await self._delete_batch(keys[start : start + _DELETE_BATCH])
        return len(keys)

    async def _delete_batch(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            with self._request("delete", "delete", keys[0], (FileNotFoundError,)):
                await self._obstore.delete_async(list(keys))
            return
        except FileNotFoundError:
            pass
        # Local directories and Azure report a missing key and stop there; fall
        # back to one request per key and treat "missing" as deleted.
        for key in keys:
            try:
                with self._request("delete", "delete", key, (FileNotFoundError,)):
                    await self._obstore.delete_async(key)
            except FileNotFoundError:
                pass


# -- local directories -----------------------------------------------------------------------

_FILE_TYPES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _file_type(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "of an unknown type"


def _inside(real_root: str, key: str) -> str:
    """The real path of *key* below *real_root* (a resolved directory); CorruptObject
    when a symbolic link on the way leads outside it. Each component is looked at
    once; only a key with a link on its path pays for a full resolution."""
    path = real_root
    for part in key.split("/"):
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return os.path.join(real_root, key)  # missing: the open says so
        if stat.S_ISLNK(mode) or part in ("", ".", ".."):
            real = os.path.realpath(os.path.join(real_root, key))
            if os.path.commonpath([real_root, real]) != real_root:
                raise CorruptObject(key, f"is a symbolic link to {real}, outside the replica")
            return real
    return path


def read_local_file(
    root: str, key: str, max_bytes: int, where: str
) -> tuple[bytearray, ObjectMeta]:
    """The bytes and metadata of *key* below the directory *root* (see the module
    docstring); never blocks on a special file and never reads outside *root*."""
    real = _inside(os.path.realpath(root), key)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(real, flags)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ObjectNotFound(key, hint=f"missing from {where}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link appeared since realpath
            raise CorruptObject(key, "is a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):  # socket, device
            raise CorruptObject(key, "is not a regular file") from None
        if isinstance(exc, PermissionError):
            raise StorageError(
                f"get {key} on {where}: permission denied ({exc.strerror})",
                hint="check the permissions of the replica directory",
            ) from None
        raise StorageError(f"get {key} on {where}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptObject(key, f"is {_file_type(info.st_mode)}, not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise CorruptObject(key, f"{size} bytes is more than the {max_bytes} allowed")
        data = bytearray(size)
        view = memoryview(data)
        done = 0
        try:
            while done < size:
                count = os.readv(fd, [view[done:]])
                if count == 0:
                    break
                done += count
        except OSError as exc:
            raise StorageError(f"get {key} on {where}: {exc.strerror}") from None
        finally:
            view.release()
        if done != size:
            raise CorruptObject(key, f"read {done} bytes, the store reports {size}")
    finally:
        os.close(fd)
    mtime_us = info.st_mtime_ns // 1000
    meta = ObjectMeta(
        key=key,
        size=size,
        last_modified=datetime.fromtimestamp(mtime_us / 1_000_000, UTC),
        # The ETag obstore gives a local file, so that a lease read here compares the same.
        e_tag=f'"{info.st_ino:x}-{mtime_us:x}-{size:x}"',
        version=None,
    )
    return data, meta
