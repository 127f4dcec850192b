"""Reusable byte buffers for the hot paths.

Fresh multi-MiB allocations are expensive: glibc hands them out as new
mappings (or keeps freed ones in per-thread arenas, which inflates RSS), and
every first touch of a page is a page fault. Capture and sync therefore read
into and build in buffers they keep, sized by the largest batch seen.
"""

from __future__ import annotations

# Sizes are rounded up to this, so slightly larger batches reuse the buffer.
_GRANULE = 256 << 10


class ReusableBuffer:
    """One growable scratch buffer; ``view(n)`` is valid until the next call."""

    def __init__(self, initial: int = 0) -> None:
        self._data = bytearray(initial)

    def view(self, size: int) -> memoryview:
        """A writable view of ``size`` bytes (contents undefined)."""
        if len(self._data) < size:
            # A new array rather than a resize: views of the old one may still
            # be alive (a resize would raise BufferError); they keep it alive.
            self._data = bytearray(-(-size // _GRANULE) * _GRANULE)
        return memoryview(self._data)[:size]

    def shrink(self, limit: int) -> None:
        """Let go of the buffer if it grew past ``limit`` (after a huge batch)."""
        if len(self._data) > limit:
            self._data = bytearray(limit)

    @property
    def capacity(self) -> int:
        return len(self._data)
