"""Executing a restore plan: parallel verified downloads, pages straight into the file.

:func:`execute_plan` contract:

- ``OUT`` is checked before anything is fetched and is never overwritten
  (``OutputExists``); the file is written as ``<OUT>.tmp`` and published only
  after the integrity check (see :mod:`litetool.restore.output`).
- Every object is verified by the storage layer (name, envelope, payload
  digest), and its content must also match what the index says about it
  (txids, frame count, commit times and db sizes of a segment; txid, page
  size and page count of a snapshot manifest; the length of a chunk).
  Anything else is ``CorruptObject`` naming the key; a missing object is
  ``ObjectNotFound``. Either fails the restore.
- Up to ``parallelism`` objects are fetched at once, newest segments first,
  then the snapshot's chunks (each distinct chunk once). One writer thread
  applies them through the :class:`~litetool.restore.page_map.PageMap`, so
  each page is written about once (``pwrite``/``pwritev`` at its offset), only
  frames through the target txid are applied, and nothing beyond the final
  database size is written.
- Before anything is created or allocated, the plan's final size must be a
  size SQLite can have (``CorruptObject`` naming the object that states it)
  and must fit on the output's file system (``RestoreError``).
- Memory is bounded by ``parallelism`` objects in flight and by
  ``memory_budget_bytes`` (one larger object may still go alone), plus the
  page map (4 bytes per page); the database is never held in memory. No
  object is decompressed beyond what its referrer says it holds (a segment's
  index entry, a chunk's manifest, a manifest's snapshot entry).
- A write that fails (no space left, I/O error, read-only file system) is
  ``RestoreError`` naming the file: "no space left on device writing
  <OUT>.tmp".
- On any failure, ``KeyboardInterrupt`` or cancellation (the CLI turns
  SIGTERM into one): the writer thread is drained, ``<OUT>.tmp`` is removed
  and ``OUT`` is left absent (removed again if the interruption came after it
  was linked). The error propagates unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litetool.errors import CorruptObject, RestoreError
from litetool.restore.output import RestoreOutput, check_output_free, temp_path_for
from litetool.restore.page_map import FIRST_FRAME_VERSION, PageMap
from litetool.restore.plan import PlannedSegment, RestorePlan
from litetool.restore.progress import NullProgress, ProgressReporter
from litetool.storage import ObjectKind, Replica, Segment, SnapshotManifest, object_key
from litetool.storage.format.segment import MAX_PAGE_NUMBER
from litetool.wording import plural

DEFAULT_PARALLELISM = 8
DEFAULT_MEMORY_BUDGET_BYTES = 256 << 20
#: Buffers per pwritev call (Linux's IOV_MAX).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


@dataclass(frozen=True, slots=True)
class RestoreResult:
    plan: RestorePlan
    path: Path
    objects_fetched: int
    bytes_fetched: int
    distinct_pages_written: int
    page_writes: int
    seconds: float


@dataclass(slots=True)
class _Job:
    """One object to fetch and apply; ``cost`` is its memory estimate."""

    cost: int
    fetch: Callable[[], Awaitable[object]]
    apply: Callable[[object], None]


async def execute_plan(
    plan: RestorePlan,
    replica: Replica,
    out_path: str | os.PathLike[str],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    progress: ProgressReporter | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> RestoreResult:
    """Restore *plan* from *replica* into *out_path* (see the module docstring)."""
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    progress = progress or NullProgress()
    started = time.perf_counter()
    out_path = Path(out_path)
    check_output_free(out_path)
    _check_final_size(plan)
    try:
        _check_free_space(plan, out_path)
        output = RestoreOutput(out_path)
        output.open()
    except OSError as exc:
        raise _write_error(exc, temp_path_for(out_path), plan) from exc
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litetool-restore")
    run = _Run(plan, replica, output, writer, progress)
    ok = False
    try:
        progress.start(plan.fetch_bytes, plan.object_count)
        await run.fetch_and_apply(parallelism, memory_budget_bytes)
        progress.phase("checking integrity")
        await run.in_writer(output.publish, plan.db_size_pages, plan.page_size)
        ok = True
    except OSError as exc:  # the storage layer raises litetool errors: this is the output
        raise _write_error(exc, output.temp_path, plan) from exc
    finally:
        # Drain the writer before touching the file: a write still running must not
        # land on a closed (and maybe reused) descriptor.
        writer.shutdown(wait=True, cancel_futures=True)
        if ok:
            output.close()
        else:
            output.discard()
        progress.finish(ok)
    return RestoreResult(
        plan=plan,
        path=out_path,
        objects_fetched=run.objects,
        bytes_fetched=run.fetched_bytes(),
        distinct_pages_written=run.page_map.written_pages() if run.page_map else 0,
        page_writes=run.page_map.page_writes if run.page_map else 0,
        seconds=time.perf_counter() - started,
    )


class _Run:
    """The state of one execution (event loop side plus the writer thread)."""

    def __init__(
        self,
        plan: RestorePlan,
        replica: Replica,
        output: RestoreOutput,
        writer: ThreadPoolExecutor,
        progress: ProgressReporter,
    ) -> None:
        self.plan = plan
        self.replica = replica
        self.output = output
        self.writer = writer
        self.progress = progress
        self.page_map: PageMap | None = None
        self.objects = 0
        self._bytes_at_start = self._get_bytes()
        self._bytes_reported = 0

    def _get_bytes(self) -> int:
        return self.replica.stats.snapshot()["get"].bytes

    def fetched_bytes(self) -> int:
        return self._get_bytes() - self._bytes_at_start

    async def in_writer(self, function: Callable, *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self.writer, function, *args)

    def _advance(self) -> None:
        self.objects += 1
        fetched = self.fetched_bytes()
        self.progress.advance(fetched - self._bytes_reported, 1)
        self._bytes_reported = fetched

    async def fetch_and_apply(self, parallelism: int, memory_budget_bytes: int) -> None:
        plan = self.plan
        manifest = await self.replica.fetch_manifest(
            plan.snapshot.manifest_digest, snapshot=plan.snapshot
        )
        _check_manifest(plan, manifest)
        self._advance()
        chunk_offsets: dict[str, list[int]] = {}
        for index, digest in enumerate(manifest.chunks):
            chunk_offsets.setdefault(digest, []).append(index)
        self.progress.retotal(plan.fetch_bytes, 1 + len(chunk_offsets) + len(plan.segments))
        frame_total = sum(planned.entry.frames for planned in plan.segments)
        self.page_map = PageMap(plan.db_size_pages, frame_total)
        jobs: deque[_Job] = deque()
        version = FIRST_FRAME_VERSION + frame_total
        for planned in reversed(plan.segments):
            version -= planned.entry.frames
            jobs.append(self._segment_job(planned, version))
        for digest, indexes in chunk_offsets.items():
            jobs.append(self._chunk_job(manifest, digest, indexes))
        await _run_jobs(jobs, parallelism, memory_budget_bytes, self.in_writer, self._advance)

    # -- segments --------------------------------------------------------------------------

    def _segment_job(self, planned: PlannedSegment, first_version: int) -> _Job:
        entry = planned.entry
        payload_bytes = entry.payload_length
        return _Job(
            cost=entry.stored_bytes + payload_bytes,
            fetch=lambda: self.replica.fetch_segment(entry.digest, expected_length=payload_bytes),
            apply=lambda segment: self._apply_segment(planned, segment, first_version),
        )

    def _apply_segment(self, planned: PlannedSegment, segment: Segment, first_version: int) -> None:
        _check_segment(planned, segment)
        first = planned.first_txid
        start = segment.frames_through(first - 1) if first > segment.first_txid else 0
        stop = segment.frames_through(planned.last_txid)
        numbers = np.frombuffer(segment.page_numbers, dtype=np.uint32)[start:stop]
        assert self.page_map is not None
        page_size = segment.page_size
        pages = segment.pages
        for run in self.page_map.apply_frames(numbers, first_version + start):
            buffers = [
                pages[(start + frame) * page_size : (start + frame + 1) * page_size]
                for frame in run.frames
            ]
            _pwritev_all(self.output.fd, buffers, (run.first_page - 1) * page_size)

    # -- snapshot chunks -------------------------------------------------------------------

    def _chunk_job(self, manifest: SnapshotManifest, digest: str, indexes: list[int]) -> _Job:
        length = manifest.chunk_length(indexes[0])
        return _Job(
            cost=2 * length,
            fetch=lambda: self.replica.fetch_object(
                digest, ObjectKind.SNAPSHOT_CHUNK, expected_length=length
            ),
            apply=lambda payload: self._apply_chunk(manifest, digest, indexes, payload),
        )

    def _apply_chunk(
        self, manifest: SnapshotManifest, digest: str, indexes: list[int], payload
    ) -> None:
        view = memoryview(payload).cast("B")
        page_size = manifest.page_size
        pages_per_chunk = manifest.chunk_size // page_size
        assert self.page_map is not None
        for index in indexes:
            expected = manifest.chunk_length(index)
            if len(view) != expected:
                raise CorruptObject(
                    object_key(digest),
                    f"snapshot chunk {index} has {len(view)} bytes, the manifest says {expected}",
                )
            first_page = index * pages_per_chunk + 1
            for run in self.page_map.apply_snapshot_pages(first_page, expected // page_size):
                start = (run.first_page - first_page) * page_size
                _pwrite_all(
                    self.output.fd,
                    view[start : start + run.count * page_size],
                    (run.first_page - 1) * page_size,
                )


async def _run_jobs(
    jobs: deque[_Job],
    parallelism: int,
    memory_budget_bytes: int,
    in_writer: Callable[..., Awaitable[object]],
    done: Callable[[], None],
) -> None:
    """Fetch with up to *parallelism* workers (in job order), apply each in the writer;
    the first error cancels the rest and propagates."""
    budget = _MemoryBudget(memory_budget_bytes)

    async def worker() -> None:
        while jobs:
            job = jobs.popleft()
            async with budget.hold(job.cost):
                fetched = await job.fetch()
                await in_writer(job.apply, fetched)
                del fetched
            done()

    tasks = [asyncio.create_task(worker()) for _ in range(min(parallelism, len(jobs)))]
    if not tasks:
        return
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _MemoryBudget:
    """Admits work while the estimated bytes in flight stay under a limit; an item
    larger than the limit runs alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = asyncio.Condition()

    def hold(self, cost: int) -> _Hold:
        return _Hold(self, cost)


class _Hold:
    def __init__(self, budget: _MemoryBudget, cost: int) -> None:
        self.budget = budget
        self.cost = cost

    async def __aenter__(self) -> None:
        budget = self.budget
        async with budget._changed:
            await budget._changed.wait_for(
                lambda: budget.used == 0 or budget.used + self.cost <= budget.limit
            )
            budget.used += self.cost

    async def __aexit__(self, *exc_info: object) -> None:
        budget = self.budget
        async with budget._changed:
            budget.used -= self.cost
            budget._changed.notify_all()


# -- checks: an object must say what the index says about it -------------------------------


def _check_manifest(plan: RestorePlan, manifest: SnapshotManifest) -> None:
    snapshot = plan.snapshot
    found = (manifest.txid, manifest.page_size, manifest.page_count)
    expected = (snapshot.txid, snapshot.page_size, snapshot.page_count)
    if found != expected:
        raise CorruptObject(
            object_key(snapshot.manifest_digest),
            "snapshot manifest (txid, page size, page count) is "
            f"{found}, the index record says {expected}",
        )


def _check_segment(planned: PlannedSegment, segment: Segment) -> None:
    # The entry's page size is the generation's (GenerationIndex checks that).
    problem = planned.entry.mismatch(segment)
    if problem is not None:
        raise CorruptObject(object_key(planned.entry.digest), problem)


# -- the output's size and the file system ---------------------------------------------------


def size_source_key(plan: RestorePlan) -> str:
    """The object whose content states the plan's final database size."""
    if plan.segments:
        return object_key(plan.segments[-1].digest)
    return object_key(plan.snapshot.manifest_digest)


def _check_final_size(plan: RestorePlan) -> None:
    if not 1 <= plan.db_size_pages <= MAX_PAGE_NUMBER:
        raise CorruptObject(
            size_source_key(plan),
            f"says the database has {plural(plan.db_size_pages, 'page')} at txid {plan.txid}; "
            f"SQLite databases have 1..{MAX_PAGE_NUMBER}",
        )


def _size_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _existing_directory(path: Path) -> Path:
    directory = path.parent
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    return directory


def _check_free_space(plan: RestorePlan, out_path: Path) -> None:
    """RestoreError when the restored file cannot fit where it is written (a temp file
    left by a killed restore is truncated first, so its blocks count as free)."""
    needed = plan.db_size_pages * plan.page_size
    directory = _existing_directory(out_path)
    info = os.statvfs(directory)
    if info.f_blocks == 0:  # a file system that does not report its size
        return
    free = info.f_bavail * info.f_frsize
    try:
        free += os.stat(temp_path_for(out_path)).st_blocks * 512
    except OSError:
        pass
    if needed > free:
        raise RestoreError(
            f"the database at txid {plan.txid} is {_size_text(needed)} "
            f"({plural(plan.db_size_pages, 'page')} of {plan.page_size} bytes, as "
            f"{size_source_key(plan)} says) and {directory} has {_size_text(free)} free",
            hint="free some space or restore to another file system",
        )


def _write_error(exc: OSError, path: Path, plan: RestorePlan) -> RestoreError:
    """One line for a failed write of the output (the temp file is already removed)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return RestoreError(
            f"{what} writing {path}",
            hint=f"the restored database needs "
            f"{_size_text(plan.db_size_pages * plan.page_size)}; free some space or restore "
            "to another file system (nothing was left behind)",
        )
    reason = exc.strerror or type(exc).__name__
    where = exc.filename if exc.filename else path
    return RestoreError(f"cannot write {where}: {reason.lower()}")


# -- writing -------------------------------------------------------------------------------


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


def _pwritev_all(fd: int, buffers: list[memoryview], offset: int) -> None:
    if len(buffers) == 1:
        _pwrite_all(fd, buffers[0], offset)
        return
    for start in range(0, len(buffers), _IOV_MAX):
        batch = buffers[start : start + _IOV_MAX]
        total = sum(len(buffer) for buffer in batch)
        written = os.pwritev(fd, batch, offset)
        if written < total:  # short write (rare): finish the batch piece by piece
            _pwrite_all(fd, memoryview(b"".join(batch))[written:], offset + written)
        offset += total
