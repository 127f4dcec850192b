"""Reading an object of a local replica directory (``file://``) as a file.

A key there is a path, and a replica directory can hold what no object store
can. :func:`read_local_file` opens it without blocking and without following a
final symbolic link, and reads only a regular file inside the root: a FIFO
(whose open would wait for a writer forever), a device, a socket or a
directory in place of an object, or a symbolic link that leads outside the
replica, is ``CorruptObject`` naming the key.
"""

from __future__ import annotations

import errno
import os
import stat
from datetime import UTC, datetime

from litetool.errors import CorruptObject, ObjectNotFound, StorageError
from litetool.storage.store import ObjectMeta

_FILE_TYPES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _file_type(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "of an unknown type"


def _inside(real_root: str, key: str) -> str:
    """The real path of *key* below *real_root* (a resolved directory); CorruptObject
    when a symbolic link on the way leads outside it. Each component is looked at
    once; only a key with a link on its path pays for a full resolution."""
    path = real_root
    for part in key.split("/"):
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return os.path.join(real_root, key)  # missing: the open says so
        if stat.S_ISLNK(mode) or part in ("", ".", ".."):
            real = os.path.realpath(os.path.join(real_root, key))
            if os.path.commonpath([real_root, real]) != real_root:
                raise CorruptObject(key, f"is a symbolic link to {real}, outside the replica")
            return real
    return path


def read_local_file(
    root: str, key: str, max_bytes: int, where: str
) -> tuple[bytearray, ObjectMeta]:
    """The bytes and metadata of *key* below the directory *root* (see the module
    docstring); never blocks on a special file and never reads outside *root*."""
    real = _inside(os.path.realpath(root), key)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(real, flags)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ObjectNotFound(key, hint=f"missing from {where}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link appeared since realpath
            raise CorruptObject(key, "is a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):  # socket, device
            raise CorruptObject(key, "is not a regular file") from None
        if isinstance(exc, PermissionError):
            raise StorageError(
                f"get {key} on {where}: permission denied ({exc.strerror})",
                hint="check the permissions of the replica directory",
            ) from None
        raise StorageError(f"get {key} on {where}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptObject(key, f"is {_file_type(info.st_mode)}, not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise CorruptObject(key, f"{size} bytes is more than the {max_bytes} allowed")
        data = bytearray(size)
        view = memoryview(data)
        done = 0
        try:
            while done < size:
                count = os.readv(fd, [view[done:]])
                if count == 0:
                    break
                done += count
        except OSError as exc:
            raise StorageError(f"get {key} on {where}: {exc.strerror}") from None
        finally:
            view.release()
        if done != size:
            raise CorruptObject(key, f"read {done} bytes, the store reports {size}")
    finally:
        os.close(fd)
    mtime_us = info.st_mtime_ns // 1000
    meta = ObjectMeta(
        key=key,
        size=size,
        last_modified=datetime.fromtimestamp(mtime_us / 1_000_000, UTC),
        # The ETag obstore gives a local file, so that a lease read here compares the same.
        e_tag=f'"{info.st_ino:x}-{mtime_us:x}-{size:x}"',
        version=None,
    )
    return data, meta
