"""The obstore-backed :class:`~litetool.storage.store.Store`: every obstore call goes through here.

:func:`open_store` is the one way a replica's store is made. An
:class:`ObstoreStore` builds its obstore store lazily from a
:class:`~litetool.storage.location.Location` (the client options, retries and
credentials below: :func:`build_store`). Each method is one kind of request
and runs inside ``translate_errors`` (``obstore_errors``), so callers only
ever see litetool errors, plus the conditional-write outcomes they ask for in
``expected``. Reads are bounded: an object larger than ``max_bytes`` is
refused from its metadata before its body is read.

Reads from a local directory (``file://``) do not go through obstore: a key
there is a path, read as a regular file inside the root (``local_file``).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError
from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store

from litetool.errors import ConfigError, CorruptObject, ObjectNotFound
from litetool.storage.aws_environment import S3Settings, StaticCredentials, resolve_s3_settings
from litetool.storage.client_env import client_options_from_env
from litetool.storage.format.keys import MARKER_KEY
from litetool.storage.local_file import read_local_file
from litetool.storage.location import Location
from litetool.storage.obstore_errors import scrub, translate_errors
from litetool.storage.store import (
    ALREADY_EXISTS,
    PRECONDITION_FAILED,
    Buffer,
    ObjectMeta,
    Store,
    WriteTag,
)

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_TIMEOUT_SECONDS = 20.0
_LIST_PAGE = 1000
# The protocol's outcomes, as obstore raises them.
_OUTCOMES: Mapping[type[BaseException], type[BaseException]] = {
    ALREADY_EXISTS: AlreadyExistsError,
    PRECONDITION_FAILED: PreconditionError,
}


def open_store(location: Location) -> Store:
    """The store of *location*; no request is made, and its client is built at
    :meth:`ObstoreStore.open` or at the first request."""
    return ObstoreStore(location)


class ObstoreStore:
    """Error-translated access to one replica root through obstore."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._store: Any = None
        self._where = location.display_url
        self._secrets = location.secret_values()
        # How the store was configured (S3: endpoint, region, credentials source;
        # never a secret), for the log; filled by ``open``.
        self._facts: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ObstoreStore({self._where!r})"

    @property
    def facts(self) -> Mapping[str, str]:
        return self._facts

    def open(self, *, create: bool = False) -> None:
        """Build the obstore store now (``create`` makes a missing local root).
        No request is made; a configuration that cannot work (S3 without any
        credentials, say) is a ConfigError here."""
        if self._store is None:
            opened = _configure(self.location, create=create)
            self._store = opened.store
            # Secrets from the environment or an AWS profile are scrubbed too.
            self._secrets = opened.secrets
            self._facts = dict(opened.facts)

    @property
    def _obstore(self) -> Any:
        if self._store is None:
            self.open()
        return self._store

    @contextmanager
    def _request(self, operation: str, key: str, expected: tuple = ()) -> Iterator[None]:
        """Translate errors; *expected* outcomes are raised as the protocol names them."""
        native = tuple(_OUTCOMES.get(outcome, outcome) for outcome in expected)
        try:
            with translate_errors(
                operation,
                key,
                where=self._where,
                secrets=self._secrets,
                expected=native,
                bucket=self.location.root,
            ):
                yield
        except (AlreadyExistsError, PreconditionError) as exc:
            # Only an expected one gets here: translate_errors turned the others
            # into StorageError.
            outcome = ALREADY_EXISTS if isinstance(exc, AlreadyExistsError) else PRECONDITION_FAILED
            raise outcome(str(exc)) from exc

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        mode: str | WriteTag = "create",
        expected: tuple[type[BaseException], ...] = (),
    ) -> WriteTag:
        """Write *data*. ``mode`` is "create", "overwrite" or a WriteTag (compare-and-swap)."""
        obstore_mode = _update_mode(mode) if isinstance(mode, WriteTag) else mode
        with self._request("put", key, expected):
            result = await self._obstore.put_async(
                key, data, mode=obstore_mode, use_multipart=False
            )
        return WriteTag(result.get("e_tag"), result.get("version"))

    async def get(self, key: str, *, max_bytes: int) -> tuple[Buffer, ObjectMeta]:
        """Read a whole object of at most *max_bytes* (CorruptObject if larger)."""
        if self.location.scheme == "file":
            with self._request("get", key, (CorruptObject,)):
                return await asyncio.to_thread(
                    read_local_file, self.location.root, key, max_bytes, self._where
                )
        with self._request("get", key, (CorruptObject,)):
            result = await self._obstore.get_async(key)
            meta = _object_meta(result.meta)
            if meta.size > max_bytes:
                raise CorruptObject(key, f"{meta.size} bytes is more than the {max_bytes} allowed")
            data = await result.bytes_async()
        if len(data) != meta.size:
            raise CorruptObject(key, f"read {len(data)} bytes, the store reports {meta.size}")
        return data, meta

    async def head(self, key: str) -> ObjectMeta:
        with self._request("head", key):
            return _object_meta(await self._obstore.head_async(key))

    async def list_pages(self, prefix: str) -> AsyncIterator[Sequence[ObjectMeta]]:
        """Every object below *prefix*, a page at a time (raw keys: callers validate them)."""
        stream = self._obstore.list(prefix or None, chunk_size=_LIST_PAGE)
        while True:
            try:
                with self._request("list", prefix or "/", (StopAsyncIteration,)):
                    batch = await stream.__anext__()
            except StopAsyncIteration:
                return
            yield [_object_meta(meta) for meta in batch]

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete *keys* (missing ones are fine)."""
        if not keys:
            return
        try:
            with self._request("delete", keys[0], (FileNotFoundError,)):
                await self._obstore.delete_async(list(keys))
            return
        except FileNotFoundError:
            pass
        # Local directories and Azure report a missing key and stop there; fall
        # back to one request per key and treat "missing" as deleted.
        for key in keys:
            try:
                with self._request("delete", key, (FileNotFoundError,)):
                    await self._obstore.delete_async(key)
            except FileNotFoundError:
                pass


def _object_meta(meta: Mapping[str, Any]) -> ObjectMeta:
    return ObjectMeta(
        key=meta["path"],
        size=meta["size"],
        last_modified=meta["last_modified"],
        e_tag=meta.get("e_tag"),
        version=meta.get("version"),
    )


def _update_mode(tag: WriteTag) -> dict[str, str]:
    # obstore rejects None values in an UpdateVersion dict.
    return {
        name: value
        for name, value in (("e_tag", tag.e_tag), ("version", tag.version))
        if value is not None
    }


# -- building obstore stores -----------------------------------------------------------------

_memory_stores: dict[str, Any] = {}
_memory_lock = threading.Lock()


def forget_memory_stores() -> None:
    """Drop every ``memory://`` store (tests)."""
    with _memory_lock:
        _memory_stores.clear()


def _client_options(location: Location, *, allow_http: bool = False) -> dict[str, Any]:
    options = location.options
    client: dict[str, Any] = {
        **{
            key: value
            for key, value in client_options_from_env(location.scheme).items()
            if key not in options  # an option of the replica comes first
        },
        "timeout": timedelta(seconds=options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        "connect_timeout": timedelta(
            seconds=options.get("connect_timeout_seconds", DEFAULT_CONNECT_TIMEOUT_SECONDS)
        ),
    }
    endpoint = options.get("endpoint")
    if allow_http or (endpoint is not None and endpoint.lower().startswith("http://")):
        # These client options replace the ones obstore read from the environment:
        # AWS_ALLOW_HTTP must be carried over here (aws_environment decides it).
        client["allow_http"] = True
    return client


def _retry_config(location: Location) -> dict[str, Any]:
    options = location.options
    return {
        "max_retries": options.get("max_retries", DEFAULT_MAX_RETRIES),
        "retry_timeout": timedelta(
            seconds=options.get("retry_timeout_seconds", DEFAULT_RETRY_TIMEOUT_SECONDS)
        ),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }


# Resolved for S3 by aws_environment and passed by other means.
_S3_RESOLVED = frozenset(
    {"endpoint", "region", "access_key_id", "secret_access_key", "session_token"}
)


def _store_config(location: Location) -> dict[str, Any]:
    """The obstore ``config`` dict (may contain secrets: never log it)."""
    values = {**location.options, **location.secrets}
    renames = {
        "s3": {"virtual_hosted_style": "virtual_hosted_style_request"},
        "gs": {"endpoint": "base_url", "service_account_path": "service_account"},
        "az": {"sas_token": "sas_key", "bearer_token": "token"},
    }[location.scheme]
    network_only = {
        "timeout_seconds",
        "connect_timeout_seconds",
        "max_retries",
        "retry_timeout_seconds",
        "allow_http",
    }
    return {
        renames.get(name, name): value for name, value in values.items() if name not in network_only
    }


def resolve_s3(location: Location, environ: Mapping[str, str] | None = None) -> S3Settings:
    """Endpoint, region and credentials of an S3 location, from its options and the
    AWS environment (``aws_environment``); ConfigError naming the location."""
    try:
        return resolve_s3_settings(
            location.options, location.secrets, os.environ if environ is None else environ
        )
    except ConfigError as exc:
        raise ConfigError(f"{location.display_url}: {exc.message}", hint=exc.hint) from None


@dataclass(frozen=True, slots=True)
class OpenedStore:
    """An obstore store, the secrets it was given (to scrub from messages) and
    what the log may say about how it was configured."""

    store: Any
    secrets: list[str] = field(repr=False)
    facts: Mapping[str, str]


def build_store(location: Location, *, create: bool = False) -> Any:
    """An obstore store for *location*. Only ``create`` makes a missing local root."""
    return _configure(location, create=create).store


def _configure(location: Location, *, create: bool = False) -> OpenedStore:
    """Build the obstore store for *location* (no request is made); see :func:`build_store`."""
    secrets = location.secret_values()
    if location.scheme == "memory":
        name = location.display_url
        with _memory_lock:
            store = _memory_stores.get(name)
            if store is None:
                store = _memory_stores[name] = MemoryStore()
            return OpenedStore(store, secrets, {})
    if location.scheme == "file":
        root = Path(location.root)
        if not create and not root.is_dir():
            raise ObjectNotFound(MARKER_KEY, hint=f"there is no replica directory {location.root}")
        try:
            return OpenedStore(LocalStore(root, mkdir=create), secrets, {})
        except BaseError as exc:
            raise ConfigError(f"cannot open {location.display_url}: {scrub(exc, [])}") from None
        except OSError as exc:  # the directory cannot be made (a file on its path, say)
            reason = exc.strerror or re.sub(r" \(os error \d+\)$", "", str(exc))
            raise ConfigError(f"cannot open {location.display_url}: {reason}") from None
    config = _store_config(location)
    extra: dict[str, Any] = {}
    facts: dict[str, str] = {}
    allow_http = False
    if location.scheme == "s3":
        settings = resolve_s3(location)
        config = {name: value for name, value in config.items() if name not in _S3_RESOLVED}
        config.update(settings.obstore_config())
        allow_http = settings.allow_http
        secrets = secrets + settings.secret_values()
        facts = settings.describe()
        if settings.credentials is not None:
            extra["credential_provider"] = _StaticCredentialProvider(settings.credentials)
    classes = {"s3": S3Store, "gs": GCSStore, "az": AzureStore}
    try:
        store = classes[location.scheme](
            location.root,
            prefix=location.prefix or None,
            config=config,
            client_options=_client_options(location, allow_http=allow_http),
            retry_config=_retry_config(location),
            **extra,
        )
    except (BaseError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot configure {location.display_url}: {scrub(exc, secrets)}"
        ) from None
    return OpenedStore(store, secrets, facts)


class _StaticCredentialProvider:
    """Static S3 keys for obstore. Passed this way, obstore pairs them with nothing
    from the environment (it would add AWS_SESSION_TOKEN to keys from the options);
    obstore asks once, as they never expire."""

    def __init__(self, credentials: StaticCredentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"StaticCredentials({self._credentials.access_key_id!r}, secret redacted)"

    def __call__(self) -> dict[str, Any]:
        return {
            "access_key_id": self._credentials.access_key_id,
            "secret_access_key": self._credentials.secret_access_key,
            "token": self._credentials.session_token,
            "expires_at": None,
        }
