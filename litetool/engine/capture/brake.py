"""Braking the application's writers: short holds of SQLite's write lock.

The capture thread brakes for one of two reasons:

- **A controlled checkpoint falls behind** (``Checkpointer.braking``): its rounds
  do not converge because the application fills the WAL faster than the
  disk takes the backfill, the WAL and the spool. The WAL would grow without
  bound and the checkpoint's last, locked step with it. One pulse of
  ``BRAKE_PULSE_SECONDS`` per call, ``BRAKE_GAP_SECONDS`` apart, slows the
  application in steps no commit waits long for, until the rounds catch up.
- **Backpressure** (``backpressure_wanted``): the spool nears its cap for a
  replica that is reachable but slower than the application (a saturated
  disk, a thin link). At the cap that replica would be detached and start
  over from a snapshot, which costs more of what is short. Calls then make
  ``BACKPRESSURE_PULSES`` pulses ``BACKPRESSURE_GAP_SECONDS`` apart, so the
  capture loop's own work between two calls is the only longer gap. An
  unreachable replica never brakes the application: the cap is for outages.

A writer that meets a pulse retries after 1, 3, 8 and 18 ms (SQLite's busy
handler), so it gets in at the fourth try. Under backpressure a writer at
full speed keeps a fifth to two fifths of its speed, and no commit waits
more than about 40 ms. Capture pauses during the pulses: commit times
captured meanwhile are late by up to the pulses' length, never early.
"""

from __future__ import annotations

import time

from litetool.engine.capture.fence import ReadFence
from litetool.errors import LitetoolError

BRAKE_PULSE_SECONDS = 0.015
BRAKE_GAP_SECONDS = 0.050
# At full speed on the benchmark machine the spool holds 60-80 % of the
# default cap between two records of a backlog: braking starts above that.
BACKPRESSURE_ON_SHARE = 0.85
BACKPRESSURE_OFF_SHARE = 0.6
BACKPRESSURE_GAP_SECONDS = 0.005
BACKPRESSURE_PULSES = 3


def backpressure_wanted(braking: bool, spool_share: float, laggard_reachable: bool) -> bool:
    """Whether to brake the application for the replica furthest behind, given
    whether it is braked now and the share of its cap the spool holds."""
    if not laggard_reachable:
        return False
    return spool_share >= (BACKPRESSURE_OFF_SHARE if braking else BACKPRESSURE_ON_SHARE)


class Brake:
    """Brake pulses for one database, from its capture thread."""

    def __init__(self, fence: ReadFence) -> None:
        self.fence = fence
        self.backpressure = False  # braking for a replica that lags (not a checkpoint)
        self.braked_seconds = 0.0  # writers held by pulses, in all
        self._next_pulse = 0.0

    def due(self, checkpoint_behind: bool) -> bool:
        """Whether to pulse now (a reason holds and the last gap is over)."""
        reason = checkpoint_behind or self.backpressure
        return reason and time.monotonic() >= self._next_pulse

    def pulse(self) -> None:
        """One pulse, or several under backpressure (see the module docstring)."""
        strong = self.backpressure
        gap = BACKPRESSURE_GAP_SECONDS if strong else BRAKE_GAP_SECONDS
        # Spaced from the start: waiting for the lock shortens the gap after.
        self._next_pulse = time.monotonic() + BRAKE_PULSE_SECONDS + gap
        for pulse in range(BACKPRESSURE_PULSES if strong else 1):
            if pulse:
                time.sleep(gap)
            started = time.monotonic()
            try:
                with self.fence.write_locked(timeout=BRAKE_PULSE_SECONDS):
                    time.sleep(BRAKE_PULSE_SECONDS)
            except LitetoolError:
                break  # the application held the write lock meanwhile: no pulse
            self.braked_seconds += time.monotonic() - started
            self._next_pulse = started + BRAKE_PULSE_SECONDS + gap

    def update_backpressure(self, spool_share: float, laggard_reachable: bool) -> bool:
        """Apply ``backpressure_wanted``; True when the state changed."""
        on = backpressure_wanted(self.backpressure, spool_share, laggard_reachable)
        changed = on != self.backpressure
        self.backpressure = on
        return changed
