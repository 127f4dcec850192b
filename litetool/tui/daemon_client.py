"""Reading a running daemon's status over HTTP (``GET /status``).

Blocking (urllib), so the app calls it from a thread worker. The JSON is
``StatusBoard.as_dict()``; it is turned back into the engine's frozen status
dataclasses, ignoring keys this version does not know, so the live screen
renders an attached daemon and an in-process engine with the same code.

Events: the request asks for ``/status?events_since=SEQ``. A daemon that
serves events answers with an ``events`` list (``Event`` fields); one that
does not ignores the query and the live screen says so once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from typing import Any

from litetool.engine.runtime.status import DatabaseStatus, Event, ReplicaStatus
from litetool.errors import ConfigError, LitetoolError

_DATABASE_FIELDS = {f.name for f in fields(DatabaseStatus)}
_REPLICA_FIELDS = {f.name for f in fields(ReplicaStatus)}
_EVENT_FIELDS = {f.name for f in fields(Event)}


class DaemonUnreachable(LitetoolError):
    """The daemon did not answer (or answered something that is not its status)."""


@dataclass(frozen=True, slots=True)
class StatusView:
    """One reading of the engine status, wherever it came from."""

    databases: tuple[DatabaseStatus, ...]
    now_us: int
    version: str = ""
    events: tuple[Event, ...] | None = None  # None: this source does not report events
    started_us: int = 0  # when the daemon started (0: not reported)


def parse_attach_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9090`` for IPv6) -> (host, port); ConfigError otherwise."""
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--attach: expected HOST:PORT, got {addr!r}")
    return host.strip("[]"), int(port)


def status_url(addr: str, events_since: int | None = None) -> str:
    host, port = parse_attach_addr(addr)
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{port}/status"
    if events_since is not None:
        url += f"?events_since={events_since}"
    return url


def decode_status(data: Any) -> StatusView:
    """A ``StatusView`` from ``/status`` JSON (DaemonUnreachable if it is not one)."""
    try:
        databases = []
        for item in data["databases"]:
            replicas = tuple(
                ReplicaStatus(**{k: v for k, v in r.items() if k in _REPLICA_FIELDS})
                for r in item.get("replicas", ())
            )
            values = {k: v for k, v in item.items() if k in _DATABASE_FIELDS}
            values["replicas"] = replicas
            databases.append(DatabaseStatus(**values))
        events = None
        if isinstance(data.get("events"), list):
            events = tuple(
                Event(**{k: v for k, v in e.items() if k in _EVENT_FIELDS}) for e in data["events"]
            )
        return StatusView(
            databases=tuple(databases),
            now_us=int(data.get("now_us") or 0),
            version=str(data.get("version", "")),
            events=events,
            started_us=int(data.get("started_us") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DaemonUnreachable(f"the daemon's /status is not litetool status: {exc}") from None


def fetch_status(
    addr: str, *, events_since: int | None = None, timeout_seconds: float = 2.0
) -> StatusView:
    """GET the daemon's status (blocking). DaemonUnreachable with one line on failure."""
    url = status_url(addr, events_since)
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            body = response.read(64 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        raise DaemonUnreachable(f"{addr}: HTTP {exc.code} for /status") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise DaemonUnreachable(f"cannot reach the daemon at {addr}: {reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DaemonUnreachable(f"cannot reach the daemon at {addr}: {exc}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise DaemonUnreachable(f"{addr}: /status did not return JSON") from None
    return decode_status(data)


def daemon_answers(addr: str, timeout_seconds: float = 0.3) -> bool:
    """Whether a litetool daemon serves ``/status`` at *addr* (a quick probe)."""
    try:
        fetch_status(addr, timeout_seconds=timeout_seconds)
    except (DaemonUnreachable, ConfigError):
        return False
    return True
