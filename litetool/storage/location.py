"""Replica locations: the one parser from a URL or path to an object store.

Accepted forms::

    /abs/dir, rel/dir, file:///abs/dir      local directory (relative paths are made absolute)
    s3://bucket[/prefix]                     Amazon S3 or an S3-compatible store
    gs://bucket[/prefix], gcs://...          Google Cloud Storage
    az://container[/prefix], abs://...       Azure Blob Storage
    memory://name[/prefix]                   process-global in-memory store (tests, demos)

Options come from the config file (a dict) and, for non-secret options, from
the URL query string (``s3://b/p?endpoint=http://127.0.0.1:9000&region=us-east-1``).
**Secrets are never accepted in the URL** (neither ``user:pass@`` nor the query
string): URLs end up in shell history, logs and status output. Give secrets in
the options dict or, better, in the standard environment of each store: for
S3 the AWS variables, profile and shared files, resolved by
``aws_environment`` (obstore alone gets several of them wrong); ``GOOGLE_*``
and ``AZURE_STORAGE_*``, which obstore reads itself. A secret never appears
in ``repr``, ``str``, :attr:`Location.display_url` or an error message.

Options (``*`` = secret, options dict only)::

    all network stores: timeout_seconds (30), connect_timeout_seconds (5),
                        max_retries (3), retry_timeout_seconds (20)
    s3:  endpoint, region, access_key_id*, secret_access_key*, session_token*,
         virtual_hosted_style, allow_http
    gs:  endpoint, service_account_path, application_credentials, service_account_key*,
         bearer_token*, allow_http
    az:  account_name, account_key*, sas_token*, bearer_token*, endpoint, use_emulator,
         allow_http

Plain http is allowed only towards an explicit ``http://`` endpoint (that is
the consent; ``allow_http`` may then be omitted; for S3 the endpoint may also
come from ``AWS_ENDPOINT_URL``), or for the Azure emulator.
Unknown options are ``ConfigError`` naming the option. Prefix path segments
are limited to ``[A-Za-z0-9._-]`` (no ``.``/``..``, no empty segments).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from litetool.errors import ConfigError, ObjectNotFound
from litetool.storage.aws_environment import S3Settings, StaticCredentials, resolve_s3_settings
from litetool.storage.client_env import client_options_from_env
from litetool.storage.format.keys import MARKER_KEY

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_TIMEOUT_SECONDS = 20.0

_SCHEMES = {
    "file": "file",
    "s3": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "az",
    "abs": "az",
    "memory": "memory",
}
_NETWORK = frozenset({"s3", "gs", "az"})
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")
# "name:" at the start of a location without "://": a scheme with a typo.
_SCHEME_LIKE_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@dataclass(frozen=True, slots=True)
class _Option:
    kind: str  # "str", "bool", "int", "seconds", "url"
    schemes: frozenset[str]
    secret: bool = False


def _opt(kind: str, *schemes: str, secret: bool = False) -> _Option:
    return _Option(kind, frozenset(schemes), secret)


OPTIONS: Mapping[str, _Option] = {
    "timeout_seconds": _opt("seconds", *_NETWORK),
    "connect_timeout_seconds": _opt("seconds", *_NETWORK),
    "max_retries": _opt("int", *_NETWORK),
    "retry_timeout_seconds": _opt("seconds", *_NETWORK),
    "endpoint": _opt("url", "s3", "gs", "az"),
    "allow_http": _opt("bool", "s3", "gs", "az"),
    "region": _opt("str", "s3"),
    "access_key_id": _opt("str", "s3", secret=True),
    "secret_access_key": _opt("str", "s3", secret=True),
    "session_token": _opt("str", "s3", secret=True),
    "virtual_hosted_style": _opt("bool", "s3"),
    "service_account_path": _opt("str", "gs"),
    "application_credentials": _opt("str", "gs"),
    "service_account_key": _opt("str", "gs", secret=True),
    "bearer_token": _opt("str", "gs", "az", secret=True),
    "account_name": _opt("str", "az"),
    "account_key": _opt("str", "az", secret=True),
    "sas_token": _opt("str", "az", secret=True),
    "use_emulator": _opt("bool", "az"),
}

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True, slots=True)
class Location:
    """Where a replica lives. ``root`` is the bucket/container/memory name, or the
    absolute directory for ``file``; ``prefix`` is the key prefix below it."""

    scheme: str
    root: str
    prefix: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def display_url(self) -> str:
        """Canonical URL with the non-secret options; never contains a secret."""
        if self.scheme == "file":
            return "file://" + quote(self.root)
        url = f"{self.scheme}://{self.root}"
        if self.prefix:
            url += "/" + self.prefix
        if self.options:
            url += "?" + urlencode(
                {name: _render(value) for name, value in sorted(self.options.items())}
            )
        return url

    def secret_values(self) -> list[str]:
        """The secret strings, for scrubbing foreign error messages."""
        return [value for value in self.secrets.values() if value]

    def __repr__(self) -> str:
        hidden = f", secrets={sorted(self.secrets)} (redacted)" if self.secrets else ""
        return f"Location({self.display_url!r}{hidden})"

    def __str__(self) -> str:
        return self.display_url


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(name: str, spec: _Option, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        shown = "(redacted)" if spec.secret else repr(value)
        return ConfigError(f"option {name} must be {expected}, got {shown}")

    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad("true or false")
    if spec.kind == "int":
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if type(value) is int and 0 <= value <= 100:
            return value
        raise bad("an integer from 0 to 100")
    if spec.kind == "seconds":
        try:
            seconds = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            seconds = None
        if seconds is not None and 0 < seconds <= 3600:
            return int(seconds) if seconds == int(seconds) else seconds
        raise bad("a number of seconds between 0 and 3600")
    if not isinstance(value, str) or not value or value != value.strip():
        raise bad("a non-empty string")
    if spec.kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad("an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise bad("a URL without credentials, query or fragment")
    return value


def _merge_options(
    scheme: str, query: str, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    raw: dict[str, Any] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise ConfigError("malformed query string in the replica URL") from exc
        for name, value in pairs:
            spec = OPTIONS.get(name)
            if spec is not None and spec.secret:
                raise ConfigError(
                    f"option {name} is a secret and is not accepted in the URL",
                    hint="put it in the config file options or the environment",
                )
            if name in raw:
                raise ConfigError(f"option {name} is given twice in the URL")
            raw[name] = value
    for name, value in (given or {}).items():
        if not isinstance(name, str):
            raise ConfigError(f"option names must be strings, got {name!r}")
        if name in raw and _render(raw[name]) != _render(value):
            raise ConfigError(f"option {name} is given both in the URL and in the options")
        raw[name] = value
    options: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in raw.items():
        spec = OPTIONS.get(name)
        if spec is None or scheme not in spec.schemes:
            where = f"{scheme}:// locations" if scheme != "file" else "local directories"
            raise ConfigError(f"unknown option {name} for {where}")
        converted = _convert(name, spec, value)
        (secrets if spec.secret else options)[name] = converted
    _check_http(scheme, options)
    return options, secrets


def _check_http(scheme: str, options: dict[str, Any]) -> None:
    endpoint = options.get("endpoint")
    if endpoint is not None and options.get("use_emulator"):
        raise ConfigError(
            "use_emulator ignores endpoint",
            hint="for an emulator on another port give endpoint, account_name and "
            "account_key instead (or set AZURITE_BLOB_STORAGE_URL)",
        )
    is_http = endpoint is not None and endpoint.lower().startswith("http://")
    if is_http and options.get("allow_http") is False:
        raise ConfigError(f"endpoint {endpoint} is plain http but allow_http is false")
    # An S3 endpoint may come from the environment (checked in aws_environment).
    if options.get("allow_http") and not is_http and scheme != "s3":
        raise ConfigError(
            "allow_http needs an explicit http:// endpoint",
            hint="give endpoint=http://host:port",
        )


def _parse_prefix(path: str) -> str:
    trimmed = path.strip("/")
    if not trimmed:
        return ""
    segments = trimmed.split("/")
    for segment in segments:
        if not _SEGMENT_RE.fullmatch(segment) or segment in (".", ".."):
            raise ConfigError(
                f"invalid key prefix {trimmed!r}: segments may use only letters, digits, "
                "'.', '_' and '-' (and may not be '.' or '..' or empty)"
            )
    return "/".join(segments)


def parse_location(url: str, options: Mapping[str, Any] | None = None) -> Location:
    """Parse a replica URL or local path (see the module docstring)."""
    if not isinstance(url, str) or not url or url != url.strip() or "\x00" in url:
        raise ConfigError(f"invalid replica location {url!r}")
    if "://" not in url:
        scheme_like = _SCHEME_LIKE_RE.match(url)
        if scheme_like:
            # A typo must never become a local directory named "s3:".
            name = scheme_like.group(1).lower()
            if name in _SCHEMES:
                rest = url[scheme_like.end() :].lstrip("/")
                raise ConfigError(
                    f"malformed replica URL {url!r}",
                    hint=f"did you mean {name}://{rest}?",
                )
            raise ConfigError(
                f"unsupported replica URL scheme {name!r} in {url!r}",
                hint="use a path, file://, s3://, gs://, az:// or memory:// "
                "(a local directory whose name has a colon: write it as ./" + url + ")",
            )
        if options:
            raise ConfigError(f"unknown option {next(iter(options))} for local directories")
        return Location("file", os.path.abspath(os.path.expanduser(url)))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("malformed replica URL") from exc
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(
            f"unsupported replica URL scheme {parts.scheme!r}",
            hint="use a path, file://, s3://, gs://, az:// or memory://",
        )
    if parts.fragment:
        raise ConfigError("a replica URL cannot have a #fragment")
    if "@" in parts.netloc:
        raise ConfigError(
            "credentials are not accepted in the replica URL",
            hint="put them in the config file options or the environment",
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query:
            raise ConfigError("a file:// URL has the form file:///absolute/directory")
        path = unquote(parts.path)
        if not path.startswith("/") or "\x00" in path:
            raise ConfigError("a file:// URL needs an absolute path")
        if options:
            raise ConfigError(f"unknown option {next(iter(options))} for local directories")
        return Location("file", os.path.normpath(path))
    if port is not None or not _BUCKET_RE.fullmatch(parts.netloc) or ".." in parts.netloc:
        raise ConfigError(f"invalid bucket or container name in {scheme}:// URL")
    prefix = _parse_prefix(parts.path)
    merged, secrets = _merge_options(scheme, parts.query, options)
    return Location(scheme, parts.netloc, prefix, merged, secrets)


# -- building stores ----------------------------------------------------------------------

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
    return open_store(location, create=create).store


def open_store(location: Location, *, create: bool = False) -> OpenedStore:
    """Build the store for *location* (no request is made); see :func:`build_store`."""
    from obstore.exceptions import BaseError
    from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store

    from litetool.storage.obstore_errors import scrub

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
