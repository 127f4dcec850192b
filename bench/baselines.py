"""The physical limits that every bench measures next to the tools, in the same run.

- ``copy_file``: ``cp SRC DST`` as a process (wall time, CPU time of cp),
  with the source warm in the page cache unless ``cold`` asks to evict it
  first (``posix_fadvise(DONTNEED)``; only the guest page cache can be
  evicted here, ``drop_caches`` is not permitted);
- ``fsync_file``: the cost of making a freshly written file durable, i.e. the
  time of ``fsync`` right after a ``cp`` (the dirty pages go to disk).
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CopyTiming:
    seconds: float
    cpu_seconds: float
    fsync_seconds: float
    bytes: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache (as far as a guest can)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def evict_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                evict(Path(dirpath) / name)
            except OSError:
                pass


def copy_file(src: Path, dst: Path, *, cold: bool = False, fsync: bool = True) -> CopyTiming:
    """``cp src dst`` timed, then (separately timed) ``fsync`` of dst; dst is removed."""
    if dst.exists():
        dst.unlink()
    if cold:
        evict(src)
    else:
        with open(src, "rb") as warm:  # make sure it is in the page cache
            while warm.read(1 << 24):
                pass
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    fsync_seconds = 0.0
    if fsync:
        started = time.perf_counter()
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_seconds = time.perf_counter() - started
    size = dst.stat().st_size
    dst.unlink()
    return CopyTiming(seconds, cpu, fsync_seconds, size)


def make_random_file(path: Path, size: int) -> None:
    """A file of ``size`` random bytes (incompressible, like the WAL of the workload)."""
    chunk = 4 << 20
    with open(path, "wb") as out:
        left = size
        while left > 0:
            out.write(os.urandom(min(chunk, left)))
            left -= chunk
        out.flush()
        os.fsync(out.fileno())
