"""How a restore reports progress: a tiny interface with a no-op default.

The executor knows nothing about terminals; the CLI passes a reporter that
draws a bar when stderr is a terminal. Every method is called from the
event loop thread, in this order: ``start``, any number of ``advance`` /
``retotal`` / ``phase``, then ``finish`` (also after a failure).
"""

from __future__ import annotations

from typing import Protocol


class ProgressReporter(Protocol):
    def start(self, total_bytes: int, total_objects: int) -> None:
        """The restore begins: what it expects to fetch (stored bytes, objects)."""

    def retotal(self, total_bytes: int, total_objects: int) -> None:
        """Better totals are known (e.g. the chunk count once the manifest is read)."""

    def advance(self, fetched_bytes: int, objects: int) -> None:
        """More objects were fetched, verified and written."""

    def phase(self, text: str) -> None:
        """A step that is not a download started (e.g. ``checking integrity``)."""

    def finish(self, ok: bool) -> None:
        """The restore ended (``ok`` False on failure or interruption)."""


class NullProgress:
    """Reports nothing."""

    def start(self, total_bytes: int, total_objects: int) -> None:
        pass

    def retotal(self, total_bytes: int, total_objects: int) -> None:
        pass

    def advance(self, fetched_bytes: int, objects: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def finish(self, ok: bool) -> None:
        pass
