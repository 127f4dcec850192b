"""Watching a file replica from the outside: change times and exact snapshots.

A ``ReplicaWatcher`` thread lists the replica tree every ``interval`` seconds
(20 ms by default). When the set of files (name -> inode) changed, it records
the time at the *end* of that scan and, if asked, a snapshot of the tree.

Why hard links give exact snapshots: all three tools write each replica file
under a temporary name and rename it into place (Litestream: ``*.tmp``;
litetool through obstore's local store: ``<name>#<n>``), so the inode behind
a final name never changes. The watcher hard-links every newly seen inode
into ``pool/<inode>`` the moment it sees it, which also keeps the inode
alive (and its number unique) after the tool deletes the file. A snapshot is
then just the name -> inode map, stored as a diff to the previous one, and
``materialize`` rebuilds it as a tree of hard links for an offline restore.

Checks that the assumption held: each pooled inode's size is recorded when
it is linked; ``in_place_changes`` counts pooled files whose size changed
later (a tool writing in place), reported by the benches. A file that
vanished between listing and linking makes the snapshot ``partial``.

Times are wall-clock (``time.time``) so they compare with the writer's
commit times. A snapshot's time is when the scan that found it ended, so
lags derived from it are slightly over-estimated, never under-estimated.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# A directory modified this recently is read again even if its mtime did not
# change: mtimes are coarse (jiffies), so a second change in the same tick
# would otherwise go unseen.
RECENT_NS = 100_000_000


def _is_temporary(name: str) -> bool:
    return name.endswith(".tmp") or "#" in name


@dataclass
class Snapshot:
    index: int
    time: float
    added: dict[str, int]
    removed: list[str]
    partial: bool
    file_count: int


@dataclass
class WatchStats:
    scans: int = 0
    scan_seconds: float = 0.0
    changes: int = 0
    files_seen: int = 0
    vanished: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class ReplicaWatcher(threading.Thread):
    """Polls ``replica_dir``; pools inodes under ``work_dir``; keeps snapshots if asked."""

    def __init__(
        self,
        replica_dir: Path,
        work_dir: Path,
        *,
        interval: float = 0.02,
        keep_snapshots: bool = True,
    ) -> None:
        super().__init__(name="replica-watcher", daemon=True)
        self.replica_dir = replica_dir
        self.pool = work_dir / "pool"
        self.pool.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.keep_snapshots = keep_snapshots
        self.current: dict[str, int] = {}
        self.snapshots: list[Snapshot] = []
        self.stats = WatchStats()
        self.last_change = time.time()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._dirs: dict[str, tuple[int, dict[str, int], list[tuple[str, str]]]] = {}

    # -- scanning -----------------------------------------------------------

    def _list(self) -> dict[str, int]:
        """name -> inode of every non-temporary file in the tree.

        Only directories whose mtime changed (or is younger than
        ``RECENT_NS``, as mtimes are coarse) are read again; the others come
        from the cache, so a scan costs one ``stat`` per directory plus the
        changed ones (the object tree has hundreds of directories).
        """
        found: dict[str, int] = {}
        stack = [("", str(self.replica_dir))]
        now_ns = time.time_ns()
        while stack:
            prefix, path = stack.pop()
            try:
                mtime_ns = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                continue
            cached = self._dirs.get(path)
            if cached is None or cached[0] != mtime_ns or now_ns - mtime_ns < RECENT_NS:
                files: dict[str, int] = {}
                subdirs: list[tuple[str, str]] = []
                try:
                    entries = list(os.scandir(path))
                except FileNotFoundError:
                    continue
                for entry in entries:
                    rel = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append((rel + "/", entry.path))
                    elif not _is_temporary(entry.name):
                        files[rel] = entry.inode()
                cached = (mtime_ns, files, subdirs)
                self._dirs[path] = cached
            found.update(cached[1])
            stack.extend(cached[2])
        return found

    def _pool_inode(self, rel: str, inode: int) -> int | None:
        """Hard-link replica file ``rel`` into the pool; returns its real inode."""
        if inode in self.stats.sizes:
            return inode
        target = self.pool / str(inode)
        try:
            os.link(self.replica_dir / rel, target)
        except FileNotFoundError:
            return None
        except FileExistsError:
            pass
        st = os.stat(target)
        if st.st_ino != inode:  # replaced between listing and linking
            real = self.pool / str(st.st_ino)
            if real.exists():
                target.unlink()
            else:
                target.rename(real)
            inode = st.st_ino
        self.stats.sizes[inode] = st.st_size
        self.stats.files_seen += 1
        return inode

    def scan_once(self) -> bool:
        """One listing; returns True when the tree changed."""
        with self._scan_lock:
            return self._scan()

    def _scan(self) -> bool:
        started = time.perf_counter()
        listed = self._list()
        changed = listed != self.current
        if changed:
            partial = False
            now_files: dict[str, int] = {}
            for rel, inode in listed.items():
                real = self._pool_inode(rel, inode)
                if real is None:
                    partial = True
                    self.stats.vanished += 1
                    continue
                now_files[rel] = real
            stamp = time.time()
            with self._lock:
                if self.keep_snapshots:
                    added = {
                        rel: ino for rel, ino in now_files.items() if self.current.get(rel) != ino
                    }
                    removed = [rel for rel in self.current if rel not in now_files]
                    self.snapshots.append(
                        Snapshot(len(self.snapshots), stamp, added, removed, partial,
                                 len(now_files))
                    )
                self.current = now_files
                self.last_change = stamp
                self.stats.changes += 1
        self.stats.scans += 1
        self.stats.scan_seconds += time.perf_counter() - started
        return changed

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.scan_once()
                self._stop_event.wait(self.interval)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"replica watcher failed: {self.error!r}") from self.error

    # -- queries --------------------------------------------------------------

    def quiet_seconds(self) -> float:
        with self._lock:
            return time.time() - self.last_change

    def copy_now(self, dest: Path) -> tuple[float, int]:
        """A hard-link copy of the replica as of a fresh scan (before a SIGTERM, say)."""
        self.scan_once()
        with self._lock:
            files = dict(self.current)
        stamp = time.time()
        self._link_tree(files, dest)
        return stamp, len(files)

    def materialize(self, index: int, dest: Path) -> None:
        """Rebuild snapshot ``index`` under ``dest`` (which must not exist) as hard links."""
        files: dict[str, int] = {}
        with self._lock:
            for snap in self.snapshots[: index + 1]:
                for rel in snap.removed:
                    files.pop(rel, None)
                files.update(snap.added)
        self._link_tree(files, dest)

    def _link_tree(self, files: dict[str, int], dest: Path) -> None:
        dest.mkdir(parents=True)
        made: set[Path] = set()
        for rel, inode in files.items():
            target = dest / rel
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            os.link(self.pool / str(inode), target)

    def in_place_changes(self) -> int:
        """Pooled files whose size changed after they were linked (should be 0)."""
        changed = 0
        for inode, size in self.stats.sizes.items():
            try:
                if os.stat(self.pool / str(inode)).st_size != size:
                    changed += 1
            except FileNotFoundError:
                changed += 1
        return changed

    def replica_bytes(self) -> int:
        """Bytes in the replica tree's current (non-temporary) files."""
        with self._lock:
            inodes = set(self.current.values())
        return sum(self.stats.sizes.get(inode, 0) for inode in inodes)


class SnapshotTree:
    """One directory that steps forward through a watcher's snapshots.

    Rebuilding a snapshot costs a hard link per file; stepping from snapshot
    k to k+1 costs only its diff, so probing every snapshot in order is cheap.
    """

    def __init__(self, watcher: ReplicaWatcher, dest: Path) -> None:
        self.watcher = watcher
        self.dest = dest
        self.files: dict[str, int] = {}
        self.index = -1
        dest.mkdir(parents=True)

    def move_to(self, index: int) -> None:
        if index < self.index:
            raise ValueError("SnapshotTree only moves forward")
        for snap in self.watcher.snapshots[self.index + 1 : index + 1]:
            for rel in snap.removed:
                (self.dest / rel).unlink(missing_ok=True)
                self.files.pop(rel, None)
            for rel, inode in snap.added.items():
                target = self.dest / rel
                if rel in self.files:
                    target.unlink(missing_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                os.link(self.watcher.pool / str(inode), target)
                self.files[rel] = inode
        self.index = index
