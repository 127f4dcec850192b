"""The local spool: committed transactions kept until every replica has them.

Layout of the spool directory (default ``.<db name>-litetool`` beside the
database)::

    state.json                 current generation (written atomically)
    log/<first txid>.spool     append-only files of spool records

Each file holds spool records back to back: one captured batch of whole
transactions as raw WAL frames behind a header (the codec, its byte layout
and its checks are ``litetool.engine.spool.spool_codec``).

On open every record is checked: header CRC, then the frames with the WAL
codec (salts, checksum chain from the start checksum, whole transactions, a
commit frame last, ending exactly at the end checksum, ``last - first + 1``
commits). The first record that fails, and everything after it, is cut off:
that is a torn append (kill -9 mid-write, or a power cut before the data was
flushed); everything before it stands.

Durability. ``append`` writes into the page cache (that survives kill -9);
``sync`` makes it durable (fdatasync of every file appended to since the last
sync). Rotating to a new file never waits for the disk: the old file is
flushed by the next ``sync``, or not at all if every replica has its records
by then (it is deleted). The engine syncs after each background backfill
step, at close, and always before a controlled checkpoint lets SQLite restart
the WAL, the only moment frames could be overwritten, so a power cut never
loses frames that were neither in the WAL, the spool nor every replica.

Files are rotated at ``ROTATE_BYTES`` and deleted once every replica has
published past their last txid.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from litetool.engine.runtime.memory import lower_thread_priority
from litetool.engine.spool.spool_codec import (
    HEADER_SIZE,
    MAX_RUNS,
    RUN_SIZE,
    SpoolRecord,
    decode_header,
    decode_with_extents,
    encode_header,
    runs_in_header,
)
from litetool.engine.spool.spool_state import SpoolState, SpoolStateError, is_current_format
from litetool.errors import DatabaseError

ROTATE_BYTES = 64 * 1024 * 1024


class SpoolDamaged(DatabaseError):
    """A spool file read after its recovery does not hold what its index says
    (a damaged disk, or someone else's write): the transactions in it cannot
    be sent from the spool."""


@dataclass(slots=True)
class SpooledRange:
    """Records located in the spool (``Spool.locate_after``); close it when done."""

    records: list[SpoolRecord]  # frames not attached
    sources: list[tuple[int, int, Path]]  # (open fd, file offset of the frames, path)
    left_out: bool  # the budget left records out
    fds: dict[Path, int]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


@dataclass(slots=True)
class _SpoolFile:
    path: Path
    first_txid: int
    last_txid: int
    size: int
    # (last txid, byte offset, byte length) of each record, in order
    extents: list[tuple[int, int, int]]


class Spool:
    """Bounded storage of the captured transactions of one generation."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # Trimming works file by file: rotate often enough to stay near the cap.
        self.rotate_bytes = max(64 << 10, min(ROTATE_BYTES, max_bytes // 8))
        self._log_dir = directory / "log"
        self._files: list[_SpoolFile] = []
        self._fd = -1
        self._fd_path = Path()
        # Files rotated out before a sync covered them: path -> open descriptor.
        # ``sync`` flushes them; rotation itself never waits for the disk.
        self._unsynced: dict[Path, int] = {}
        # Appends counted, and how many of them the last fdatasync covered.
        self._appended = 0
        self._synced = 0
        # Bytes appended since open, ever growing: a cheap "anything new?".
        self.appended_bytes = 0
        # Files created, and how many of them the last directory fsync covered.
        self._created = 0
        self._created_synced = 0
        self.last: SpoolRecord | None = None
        # The capture thread appends and trims; replica tasks read from threads.
        self._lock = threading.RLock()
        self._deleter: concurrent.futures.ThreadPoolExecutor | None = None

    # -- opening and recovery ---------------------------------------------------

    def open(self) -> SpoolState | None:
        """Create the directories, recover the log; return the saved state.

        A spool of another format (an older litetool) is discarded: capture
        then starts a new generation, which the replicas follow.
        """
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create spool {self.directory}: {exc.strerror}") from None
        state_path = self.directory / "state.json"
        saved = self._read_json(state_path)
        paths = sorted(self._log_dir.glob("*.spool"))
        if saved is not None and not is_current_format(saved):
            for path in paths:
                path.unlink()
            return None
        try:
            state = None if saved is None else SpoolState.from_json(saved)
        except SpoolStateError as exc:
            raise DatabaseError(f"spool file {state_path} is unreadable: {exc}") from None
        previous: SpoolRecord | None = None
        for index, path in enumerate(paths):
            data = path.read_bytes()
            records, extents, end = decode_with_extents(data, verify=True)
            if records and previous is not None and records[0].first_txid != previous.last_txid + 1:
                # Not the next txids (a torn record before it was cut): this
                # file and every later one cannot continue the chain.
                for later in paths[index:]:
                    later.unlink()
                break
            if end != len(data):
                # A torn append: keep the whole records only. Appends after a
                # failed one that could not be cut off went to a new file,
                # which the check above keeps when it continues the txids.
                with open(path, "r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
            if records:
                self._files.append(
                    _SpoolFile(path, records[0].first_txid, records[-1].last_txid, end, extents)
                )
                self.last = replace(records[-1], frames=b"")
                previous = records[-1]
            else:
                path.unlink()
        return state

    def start_generation(self, state: SpoolState) -> None:
        """Forget every spooled record and record a new generation's state."""
        with self._lock:
            self._close_file()
            self._drop_unsynced(list(self._unsynced))
            for spool_file in self._files:
                spool_file.path.unlink(missing_ok=True)
            self._files = []
            self.last = None
            self._write_json(self.directory / "state.json", state.to_json())

    def close(self) -> None:
        """Sync and close every file (trimmed files are deleted)."""
        self.wait_for_trims()
        self.sync()
        self._close_file()

    def _close_file(self) -> None:
        """Stop appending to the current file; if it has appends no sync
        covered yet, keep it open for the next ``sync`` (never wait here)."""
        with self._lock:
            if self._fd < 0:
                return
            fd, self._fd = self._fd, -1
            if self._synced < self._appended:
                self._unsynced[self._fd_path] = fd
            else:
                os.close(fd)

    def _drop_unsynced(self, paths: list[Path]) -> None:
        """Forget pending flushes of files that left the spool."""
        for path in paths:
            fd = self._unsynced.pop(path, None)
            if fd is not None:
                os.close(fd)

    # -- appending --------------------------------------------------------------

    def append(self, record: SpoolRecord) -> None:
        """Append one batch (header + frames, one writev, no copy).

        It survives kill -9 once this returns, and a power cut after ``sync``.
        """
        with self._lock:
            header = encode_header(record)
            frames = memoryview(record.frames).cast("B")
            if len(frames) != record.frames_bytes:
                raise ValueError("frames do not match the record's frame count")
            current = self._files[-1] if self._files else None
            if current is None or current.size >= self.rotate_bytes or self._fd < 0:
                if current is None or current.size >= self.rotate_bytes:
                    path = self._log_dir / f"{record.first_txid:016x}.spool"
                    current = _SpoolFile(path, record.first_txid, record.first_txid - 1, 0, [])
                    self._files.append(current)
                    self._created += 1
                self._close_file()
                self._fd = os.open(current.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._fd_path = current.path
            try:
                _writev_all(self._fd, [header, frames], current.path)
            except DatabaseError:
                # A partial write (the disk filled up) must not stay: the next
                # append would land after it, where no extent says it is.
                self._cut_back(current)
                raise
            self._appended += 1
            length = len(header) + len(frames)
            self.appended_bytes += length
            current.extents.append((record.last_txid, current.size, length))
            current.size += length
            current.last_txid = record.last_txid
            # Without the frames (a view of the caller's reused buffer); built
            # directly: ``dataclasses.replace`` costs more than the write.
            self.last = SpoolRecord(
                record.first_txid,
                record.last_txid,
                record.last_time_us,
                record.start,
                record.position,
                record.db_size_pages,
                record.frame_count,
            )

    def _cut_back(self, current: _SpoolFile) -> None:
        """Cut a failed append's partial bytes off the file being appended to;
        if even that fails, appends go on in a new file (the torn tail is past
        every extent, so nothing reads it, and recovery cuts it)."""
        try:
            os.ftruncate(self._fd, current.size)
        except OSError:
            os.close(self._fd)
            self._fd = -1
            current.size = max(current.size, self.rotate_bytes)  # rotate next time

    def sync(self) -> None:
        """Make every record appended before this call durable.

        Safe from any thread: the fdatasyncs run outside the lock (the file
        being appended to on a duplicate descriptor), so appends go on meanwhile.
        """
        with self._lock:
            target, created = self._appended, self._created
            if self._synced >= target and self._created_synced >= created:
                return
            # Files rotated out since the last sync, then the current one.
            pending = list(self._unsynced.items())
            self._unsynced.clear()
            fd = os.dup(self._fd) if self._fd >= 0 and self._synced < target else -1
            sync_dir = self._created_synced < created
        flushed = 0
        try:
            for _path, old_fd in pending:
                os.fdatasync(old_fd)
                flushed += 1
            if fd >= 0:
                os.fdatasync(fd)
            if sync_dir:
                fsync_dir(self._log_dir)  # new files' names are durable too
        except OSError as exc:
            with self._lock:
                # Still owed: the next sync tries them again (unless trimmed).
                live = {f.path for f in self._files}
                for path, old_fd in pending[flushed:]:
                    if path in live:
                        self._unsynced[path] = old_fd
                    else:
                        os.close(old_fd)
                pending = pending[:flushed]
            raise DatabaseError(f"cannot sync spool {self.directory}: {exc.strerror}") from None
        finally:
            for _path, old_fd in pending:
                os.close(old_fd)
            if fd >= 0:
                os.close(fd)
        with self._lock:
            self._synced = max(self._synced, target)
            self._created_synced = max(self._created_synced, created)

    # -- reading for replicas --------------------------------------------------

    def locate_after(self, txid: int, *, max_bytes: int) -> SpooledRange:
        """The spooled records holding transactions after ``txid``, within a
        byte budget (at least one record, however large), without their frames.

        Records are whole batches: the first one may start at or before
        ``txid + 1``. The range holds each record (frames empty, header
        checked) with an open descriptor of its file and the file offset of
        its frames, so the caller can read the frames straight to where it
        wants them
        (``segment_build.build_segment_from_spool``) even if the spool is
        trimmed meanwhile. Close the range when done.
        """
        with self._lock:
            wanted, left_out = self._extents_after(txid, max_bytes)
            located = SpooledRange([], [], left_out, {})
            try:
                for path, offset, length in wanted:
                    fd = located.fds.get(path)
                    if fd is None:
                        fd = located.fds[path] = os.open(path, os.O_RDONLY)
                    head = os.pread(fd, HEADER_SIZE, offset)
                    runs = runs_in_header(head)
                    if 0 < runs <= MAX_RUNS:
                        head = os.pread(fd, HEADER_SIZE + runs * RUN_SIZE, offset)
                    record = decode_header(head, 0)
                    if record is None or record.header_size + record.frames_bytes != length:
                        raise SpoolDamaged(f"spool file {path} is damaged (bad record header)")
                    located.records.append(record)
                    located.sources.append((fd, offset + record.header_size, path))
            except BaseException:
                located.close()
                raise
            return located

    def _extents_after(self, txid: int, max_bytes: int) -> tuple[list[tuple[Path, int, int]], bool]:
        """(path, offset, length) of the records after ``txid`` within the budget."""
        wanted: list[tuple[Path, int, int]] = []
        total = 0
        for spool_file in self._files:
            if spool_file.last_txid <= txid:
                continue
            for last, offset, length in spool_file.extents:
                if last <= txid:
                    continue
                if wanted and total + length > max_bytes:
                    return wanted, True
                wanted.append((spool_file.path, offset, length))
                total += length
        return wanted, False

    def bytes_after(self, txid: int, limit: int) -> int:
        """Bytes of the records after ``txid``, counted up to about ``limit``
        (more than ``limit`` means: more than that)."""
        with self._lock:
            extents, more = self._extents_after(txid, limit)
            total = sum(length for _path, _offset, length in extents)
            return max(total, limit + 1) if more else total

    @property
    def first_txid(self) -> int | None:
        with self._lock:
            return self._files[0].first_txid if self._files else None

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(f.size for f in self._files)

    @property
    def over_cap(self) -> bool:
        return self.size_bytes > self.max_bytes

    def trim(self, acked_txid: int) -> int:
        """Drop files whose transactions every replica has; return bytes freed.

        They leave the spool (and its size) at once; a background thread
        deletes them. Deleting a file of up to ``ROTATE_BYTES`` that the kernel
        is still writing back takes tens of milliseconds, which the capture
        thread (the caller) must not wait for. A file left behind by a crash
        holds records older than the rest and is dropped again by the next trim.
        """
        doomed: list[Path] = []
        freed = 0
        with self._lock:
            while len(self._files) > 1 and self._files[0].last_txid <= acked_txid:
                spool_file = self._files.pop(0)
                doomed.append(spool_file.path)
                freed += spool_file.size
            # Every replica has them: they need no flush any more.
            self._drop_unsynced(doomed)
            if doomed:
                if self._deleter is None:
                    self._deleter = concurrent.futures.ThreadPoolExecutor(
                        max_workers=1,
                        thread_name_prefix="spool-trim",
                        initializer=lower_thread_priority,
                    )
                self._deleter.submit(_unlink_all, doomed)
        return freed

    def wait_for_trims(self) -> None:
        """Return once every file dropped by ``trim`` is deleted."""
        with self._lock:
            deleter, self._deleter = self._deleter, None
        if deleter is not None:
            deleter.shutdown(wait=True)

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _read_json(path: Path) -> object:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DatabaseError(f"spool file {path} is unreadable: {exc}") from None

    @staticmethod
    def _write_json(path: Path, value: dict) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(value, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # left for the next trim: it holds only replicated records


def _writev_all(fd: int, buffers: list, path: Path) -> None:
    views = [memoryview(b).cast("B") for b in buffers]
    while views:
        try:
            written = os.writev(fd, views)
        except OSError as exc:
            raise DatabaseError(f"cannot write spool {path}: {exc.strerror}") from None
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (new and removed names) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
