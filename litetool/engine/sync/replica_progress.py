"""What a replica task has done, as one value any thread may read.

A replica's sync loop (``ReplicaSync``, on the event loop) publishes its
progress as a frozen ``ReplicaProgress``, replaced whole, by one attribute
assignment, whenever one of its fields changes: the capture thread (the spool
cap, backpressure, the count of unpublished transactions) and the engine read
``sync.progress`` without a lock and always see one consistent value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from litetool.errors import LitetoolError

# A replica that stored nothing for this long with work waiting (a request
# hanging in an outage, retried inside the store client) no longer counts as
# reachable, so it never brakes the application (see ``reachable``).
PROGRESS_WINDOW_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ReplicaProgress:
    """One replica's progress, as its sync loop last published it."""

    # The replica-side generation and the engine generation whose txids it
    # carries (None until the replica has a position).
    generation: str | None = None
    engine_generation: str | None = None
    txid: int = -1  # the last txid published (-1 while record 0 is not)
    # The replica gave up its place in the spool (the cap, or the spool lost
    # its place): it starts a new generation from a snapshot.
    detached: bool = False
    failing: bool = False  # a sync failed since the last success
    active_at: float = 0.0  # when it last stored an object (or had nothing to), monotonic
    # The error that proves this replica unusable, if one did (``ReplicaSync.run``).
    unusable_error: LitetoolError | None = None

    @property
    def needs_snapshot(self) -> bool:
        """A new generation's record 0 (its snapshot) is not published yet."""
        return self.generation is not None and self.txid < 0

    @property
    def has_place(self) -> bool:
        """The replica holds a place in the spool: the transactions after
        ``txid`` are kept for it (a replica not yet placed, detached, or
        waiting for its snapshot starts from a snapshot: it holds none)."""
        return self.generation is not None and self.txid >= 0 and not self.detached

    @property
    def reachable(self) -> bool:
        """Nothing failed since the last success, which is recent: an object
        stored (or nothing to store) within ``PROGRESS_WINDOW_SECONDS``."""
        return not self.failing and time.monotonic() - self.active_at < PROGRESS_WINDOW_SECONDS
