"""Waiting until a replica has caught up with the database, verified by a restore.

"Caught up" is not "the replica directory is quiet": Litestream v0.3 can
ship nothing for 20-30 s under a saturating writer while its directory is
quiet (see shared/reference/litestream-baselines.md). A candidate moment is
when the directory has been quiet for 1 s *and* the replicator's process tree
uses under 0.05 core (or has been busy for 5 s with a quiet directory,
reported as ``busy_while_quiet_s``); each candidate is checked by restoring a hard-link copy
of the replica taken at that moment, and only a copy that restores every
committed row counts. The last copy checked is also the "pre-SIGTERM copy"
the benches report (the caller sends SIGTERM right after).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from replica_watch import ReplicaWatcher
from replicator import Replicator, restore

# A replicator counts as idle below this many cores (CPU seconds per second).
IDLE_CORES = 0.05
QUIET_SECONDS = 1.0
BUSY_CHECK_SECONDS = 5.0


def wait_caught_up(
    repl: Replicator, watcher: ReplicaWatcher, run_dir: Path, last_id: int, writer_end: float,
    timeout: float,
) -> dict:
    """Wait until a copy of the replica restores row ``last_id`` (or ``timeout`` after
    ``writer_end``); returns what the last checked copy restored, and when.

    ``caught_up_s`` is the time of the replica's last change before that copy,
    minus ``writer_end``.
    """
    tool = repl.tool
    deadline = writer_end + timeout
    prev_cpu, prev_t = repl.cpu_seconds(), time.time()
    attempts = 0
    busy_quiet = 0.0  # seconds the replica was quiet while the replicator was busy
    busy_since_check = 0.0
    while True:
        time.sleep(0.5)
        now = time.time()
        cpu = repl.cpu_seconds()
        cores = (cpu - prev_cpu) / (now - prev_t)
        quiet = watcher.quiet_seconds() >= QUIET_SECONDS
        if quiet and cores >= IDLE_CORES:
            busy_quiet += now - prev_t
            busy_since_check += now - prev_t
        prev_cpu, prev_t = cpu, now
        timed_out = now > deadline
        # Busy but quiet for long: check anyway (a replicator that burns CPU
        # with nothing left to ship would otherwise hold the bench until the
        # timeout); the restore decides whether it has caught up.
        candidate = quiet and (cores < IDLE_CORES or busy_since_check >= BUSY_CHECK_SECONDS)
        if not (timed_out or candidate):
            continue
        busy_since_check = 0.0
        attempts += 1
        copy_dir = run_dir / "copy"
        if copy_dir.exists():
            shutil.rmtree(copy_dir)
        copy_time, files = watcher.copy_now(copy_dir)
        last_change = watcher.last_change
        cpu_at_copy = cpu
        result = restore(tool, copy_dir, run_dir / "copy-restored.db", verify=True)
        if (result.ok and result.max_id >= last_id) or timed_out or not repl.alive():
            contiguous = result.ok and result.count == result.max_id
            return {
                "caught_up": bool(result.ok and result.max_id >= last_id),
                "caught_up_s": max(0.0, last_change - writer_end),
                "checks": attempts,
                "cpu_at_caught_up": cpu_at_copy,
                "copy_files": files,
                "copy_restore_ok": result.ok,
                "copy_rows": result.max_id if contiguous else None,
                "copy_max_id": result.max_id,
                "copy_quick_check": result.quick_check,
                "copy_restore_s": result.seconds,
                "copy_error": result.error,
                "copy_age_s": time.time() - copy_time,
                "busy_while_quiet_s": busy_quiet,
                "cores_at_check": cores,
            }
        shutil.rmtree(copy_dir)
