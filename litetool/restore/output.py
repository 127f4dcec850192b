"""The restored file: written as ``<OUT>.tmp``, published as ``OUT`` only when complete.

Contract (DESIGN.md invariant 8):

- A path the user gave (``restore -o OUT``, the TUI's restore dialog) must be
  new, in a directory that exists: :func:`check_new_output` says why not in one
  line; a restore never creates directories for it. (Only the database's own
  path from the configuration gets its missing directories made, and removed
  again when the restore fails.)
- ``OUT`` is never overwritten. :func:`check_output_free` refuses an existing
  ``OUT`` (file, directory or dangling link) and an existing ``OUT-wal`` or
  ``OUT-journal``, which SQLite would apply to the restored database when it
  is first opened. It runs before any download and again once the temp file
  is locked; publishing uses ``link(2)`` (or ``renameat2(RENAME_NOREPLACE)``
  where hard links are not supported), which fails if ``OUT`` appeared in the
  meantime, so there is no window for a race.
- ``<OUT>.tmp`` is locked (``flock``) while a restore writes it: a second
  restore to the same ``OUT`` is refused, and a temp file left by a killed
  restore is reused.
- :meth:`RestoreOutput.discard` (failure, interruption) removes the temp file,
  anything SQLite could have left next to it and the directories this restore
  created for ``OUT`` (if still empty); ``OUT`` is untouched unless this
  restore itself linked it (interrupted in the very last step).
- :meth:`RestoreOutput.publish` makes the file an ordinary database:

  * the database header's file format versions (bytes 18 and 19) are set
    from 2 (WAL) to 1 (rollback journal). A restored file is one
    self-contained file: in rollback mode SQLite opens it, even read-only,
    without creating ``-wal``/``-shm`` files. Applications that use WAL
    switch it back with ``PRAGMA journal_mode=WAL`` (persistent), as
    ``litetool replicate`` does;
  * ``PRAGMA integrity_check`` on a read-only connection (which creates no
    journal) must say ``ok``;
  * fsync the file, link it to ``OUT``, remove the temp name, fsync the
    directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import sqlite3
import urllib.parse
from pathlib import Path

from litetool.errors import OutputExists, RestoreError

DATABASE_MAGIC = b"SQLite format 3\x00"
#: Files SQLite keeps next to a database; a stale one next to OUT would be applied to it.
DANGEROUS_SIDECARS = ("-wal", "-journal")
SIDECARS = ("-journal", "-wal", "-shm")
_WRITE_VERSION_OFFSET = 18
_ROLLBACK = 1
_WAL = 2
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def temp_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def check_output_free(path: Path) -> None:
    """OutputExists when restoring to *path* could overwrite or corrupt something."""
    if os.path.lexists(path):
        raise OutputExists(
            f"{path} already exists; restore never overwrites it",
            hint="choose another output with -o, or move the existing file away",
        )
    for suffix in DANGEROUS_SIDECARS:
        sidecar = Path(f"{path}{suffix}")
        if os.path.lexists(sidecar):
            raise OutputExists(
                f"{sidecar} exists and SQLite would apply it to the restored database",
                hint=f"remove {sidecar} (it belongs to a database that is gone), "
                "or restore elsewhere",
            )


def check_output_directory(path: Path) -> None:
    """RestoreError when the directory *path* would go in does not exist (a typo in a
    path given by hand must not create directories), worded like ``replicate``'s
    refusal of a database that is not there."""
    directory = Path(path).parent
    if directory.is_dir():
        return
    if os.path.lexists(directory):
        raise RestoreError(f"{directory} is not a directory", hint="choose another output with -o")
    raise RestoreError(
        f"output directory not found: {directory}", hint="create it first, or check the path"
    )


def check_new_output(path: Path) -> None:
    """The checks for an output path the user gave, before anything is fetched or made:
    it must not exist (:func:`check_output_free`) and its directory must
    (:func:`check_output_directory`). Shared by ``litetool restore -o`` and the TUI."""
    check_output_free(path)
    check_output_directory(path)


class RestoreOutput:
    """The temp file of one restore. Use :meth:`open`, write through ``fd``, then
    :meth:`publish` and :meth:`close`; call :meth:`discard` on every other way out."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.temp_path = temp_path_for(self.path)
        self.fd = -1
        self.published = False
        self.created_directories: list[Path] = []

    def open(self) -> None:
        check_output_free(self.path)
        self._make_directories()
        try:
            self._open_locked()
        except BaseException:
            self._remove_created_directories()
            raise
        try:
            os.ftruncate(self.fd, 0)
            self._remove_sidecars()
            check_output_free(self.path)
        except BaseException:
            self.discard()
            raise

    def _open_locked(self) -> None:
        while True:
            fd = os.open(self.temp_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RestoreError(
                    f"another restore is writing {self.temp_path}",
                    hint="wait for it to finish, or restore to another output",
                ) from None
            # The holder we waited for may have renamed or removed that name
            # between our open and our lock: only the file at the name counts.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.temp_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd

    def publish(self, db_size_pages: int, page_size: int) -> None:
        """Truncate, make it an ordinary database, check it, fsync and link it to OUT."""
        os.ftruncate(self.fd, db_size_pages * page_size)
        self._set_rollback_mode(page_size)
        self._integrity_check()
        self._remove_sidecars()
        os.fsync(self.fd)
        _link_no_replace(self.temp_path, self.path)
        self.published = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)
        _fsync_directory(self.path.parent)

    def close(self) -> None:
        """Done (after :meth:`publish`): release the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        """Remove the temp file and its SQLite sidecars; idempotent. OUT is removed only
        if this restore published it (an interruption during the last step), and only
        while it is still the file this restore wrote."""
        if self.fd < 0:
            self._remove_created_directories()
            return
        # Compared while our descriptor is open, so the inode cannot have been reused.
        ours = os.fstat(self.fd)
        if self.published:
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(ours, os.stat(self.path)):
                    os.unlink(self.path)
                    _fsync_directory(self.path.parent)
            self.published = False
        with contextlib.suppress(FileNotFoundError):
            # Only while we hold the lock: the name is ours.
            if os.path.samestat(ours, os.stat(self.temp_path)):
                os.unlink(self.temp_path)
        self._remove_sidecars()
        self.close()
        self._remove_created_directories()

    def _remove_created_directories(self) -> None:
        for directory in reversed(self.created_directories):  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break  # not empty (someone else's files) or gone: leave the rest
        self.created_directories = []

    def _make_directories(self) -> None:
        missing = []
        directory = self.path.parent
        while not directory.exists() and directory != directory.parent:
            missing.append(directory)
            directory = directory.parent
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:
                continue  # made meanwhile by someone else: not ours to remove
            self.created_directories.append(directory)

    def _remove_sidecars(self) -> None:
        for suffix in SIDECARS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.temp_path}{suffix}")

    def _set_rollback_mode(self, page_size: int) -> None:
        header = os.pread(self.fd, 100, 0)
        if len(header) < 100 or header[:16] != DATABASE_MAGIC:
            raise RestoreError(f"restored image {self.temp_path} has no SQLite database header")
        stored = int.from_bytes(header[16:18], "big")
        if (65536 if stored == 1 else stored) != page_size:
            raise RestoreError(
                f"restored image has page size {stored} in its header, the replica says {page_size}"
            )
        versions = header[_WRITE_VERSION_OFFSET : _WRITE_VERSION_OFFSET + 2]
        if versions == bytes((_WAL, _WAL)):
            os.pwrite(self.fd, bytes((_ROLLBACK, _ROLLBACK)), _WRITE_VERSION_OFFSET)

    def _integrity_check(self) -> None:
        uri = "file:" + urllib.parse.quote(str(self.temp_path)) + "?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, isolation_level=None)
            try:
                rows = connection.execute("PRAGMA integrity_check(20)").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise RestoreError(f"the restored database cannot be read: {exc}") from exc
        problems = [row[0] for row in rows]
        if problems != ["ok"]:
            raise RestoreError(
                f"integrity check of the restored database failed: {'; '.join(problems[:3])}",
                hint="the replica holds a damaged database image; try an earlier --txid or --at",
            )


def _link_no_replace(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
        return
    except FileExistsError:
        raise _exists_at_publish(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
    _rename_no_replace(source, target)


def _rename_no_replace(source: Path, target: Path) -> None:
    """renameat2(RENAME_NOREPLACE) where there are no hard links (some network file
    systems); a plain rename after a last check where that is missing too."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        result = renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise _exists_at_publish(target)
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(target))
    check_output_free(target)
    os.rename(source, target)


def _exists_at_publish(target: Path) -> OutputExists:
    return OutputExists(
        f"{target} appeared while restoring; restore never overwrites it",
        hint="choose another output with -o",
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
