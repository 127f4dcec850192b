"""Request counters of one replica, for metrics and ``status``.

Counted per request kind (put, get, head, list, delete): requests made,
failures, and payload bytes sent (put) or received (get), by
``CountingStore`` (``counting_store.py``). A listing page counts one request
and a delete of up to 1000 keys one (a store that deletes them one by one, a
local directory or Azure when a key is missing, makes more), which is close to
(but not exactly) what the store bills. Single-threaded asyncio use only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUEST_KINDS = ("put", "get", "head", "list", "delete")


@dataclass(frozen=True, slots=True)
class RequestCounts:
    requests: int = 0
    failures: int = 0
    bytes: int = 0


@dataclass(slots=True)
class RequestStats:
    """Mutable counters; read them through :meth:`snapshot`."""

    _requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REQUEST_KINDS, 0))
    _failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REQUEST_KINDS, 0))
    _bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REQUEST_KINDS, 0))

    def record(self, kind: str, *, nbytes: int = 0, failed: bool = False) -> None:
        self._requests[kind] += 1
        self._bytes[kind] += nbytes
        if failed:
            self._failures[kind] += 1

    def add_bytes(self, kind: str, nbytes: int) -> None:
        self._bytes[kind] += nbytes

    def snapshot(self) -> dict[str, RequestCounts]:
        """An immutable copy: ``{"put": RequestCounts(...), ...}``."""
        return {
            kind: RequestCounts(self._requests[kind], self._failures[kind], self._bytes[kind])
            for kind in REQUEST_KINDS
        }

    @property
    def total_requests(self) -> int:
        return sum(self._requests.values())
