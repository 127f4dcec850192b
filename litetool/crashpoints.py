"""Crash points: the process kills itself (SIGKILL) at a named moment.

For recovery tests only: ``LITETOOL_CRASH_AT=name`` (or ``name:N``, the Nth
time the point is reached) makes ``crash_point(name)`` send SIGKILL to the
process, so a test can stop litetool exactly in the middle of a checkpoint,
an upload or a publish and check that nothing is lost. Unset (always, in
production) a crash point costs one string comparison.

Points: ``capture`` (a batch appended to the spool), ``checkpoint-locked``
(a controlled checkpoint's backfill done, the write lock still held),
``checkpoint-done`` (a complete controlled checkpoint, the lock released),
``segment-uploaded`` (a segment stored, its record not yet published),
``record-published``, ``snapshot-uploaded`` (a snapshot's chunks stored,
its record not yet published), ``compaction-published`` (a compacted index
record stored; a compaction may write several).

A module of its own at the top of the package, like ``litetool.errors``:
the engine and storage both have points.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("LITETOOL_CRASH_AT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_LEFT = {_NAME: int(_COUNT) if _COUNT.isdigit() else 1} if _NAME else {}


def crash_point(name: str) -> None:
    """SIGKILL this process if ``LITETOOL_CRASH_AT`` names this point (and count)."""
    if name != _NAME:
        return
    _LEFT[name] -= 1
    if _LEFT[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
