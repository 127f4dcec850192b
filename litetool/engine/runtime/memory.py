"""Keeping the daemon's memory small and flat, and its bulk work out of the way.

The hot paths reuse their buffers (``litetool.engine.runtime.buffers``), so what
remains are transient allocations of a few MiB (compressed objects, upload
bodies). glibc would keep those in per-thread arenas, raising the heap
threshold after each free, so RSS creeps up to several times the working
set. Two settings undo that: a fixed mmap threshold (allocations of 1 MiB or
more get their own mapping and go back to the system when freed) and at most
two arenas. Best effort: a no-op where glibc's ``mallopt`` is not there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Apply the settings above; True if glibc took them."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        return bool(
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_ARENA_MAX, ARENA_MAX)
        )
    return False


# Bulk work (compression, hashing, uploads, backfill) runs this much "nicer"
# than the application and the capture thread, which holds SQLite's write lock
# during a checkpoint's last step: on a small machine the scheduler then
# serves them first.
BULK_NICENESS = 5


def lower_thread_priority() -> None:
    """Make the calling thread (not the process) nicer; best effort (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BULK_NICENESS)
