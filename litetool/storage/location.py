"""Replica locations: the one parser from a URL or path to where a replica lives
(a :class:`Location`; ``obstore_store`` builds the store from it).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from litetool.errors import ConfigError

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
