"""How one replica's syncs go: failures, outages, progress, and what they say.

``ReplicaHealth`` counts a replica's failures since its last success, knows
whether the last one was an outage (the store unreachable or failing), when
the replica last stored an object, and whether it ever worked. It writes the
replica's status on the board and reports failures (an error no retry heals
is logged once per problem). Each change of what the replica's progress
shows (failures, the last object stored, an unusable error, a record
published) calls ``on_change``: the sync loop publishes a new
``ReplicaProgress`` then.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from litetool.engine.runtime.status import ReplicaState, ReplicaStatus, StatusBoard, publish_and_log
from litetool.errors import ConfigError, LitetoolError, StorageThrottled, StorageUnavailable
from litetool.storage import Replica

BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


def cannot_heal(exc: BaseException) -> bool:
    """Whether retrying cannot help until someone changes the configuration or
    the store: credentials, permissions, no bucket, wrong region, bad options."""
    return isinstance(exc, ConfigError) or getattr(exc, "retryable", True) is False


class ReplicaHealth:
    """The failures, progress and status of one replica of one database."""

    def __init__(
        self,
        *,
        name: str,
        replica: Replica,
        board: StatusBoard,
        db_path: str,
        log: Callable[..., None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.replica = replica
        self.board = board
        self.db_path = db_path
        self.log = log
        self._on_change = on_change
        self.failures = 0
        self.outage = False  # the last failure: the store unreachable or failing
        self.last_progress = time.monotonic()  # an object stored, or nothing to do
        # Set by the first sync that succeeds. Before it, an error no retry can
        # heal (StorageMisconfigured, ConfigError) makes the replica unusable:
        # the engine stops when no replica of the database can work.
        self.proven = False
        self.unusable_error: LitetoolError | None = None
        # The problem of the last error that no retry heals (logged once only).
        self._reported: str | None = None

    # -- progress and failures ---------------------------------------------------------

    def progress(self) -> None:
        """An object was stored (or there was nothing to store): the replica moves."""
        self.last_progress = time.monotonic()
        self._on_change()

    def succeeded(self) -> None:
        self.failures = 0
        self.proven = True
        self.unusable_error = None
        self._reported = None
        self._on_change()

    def unusable(self, exc: LitetoolError) -> None:
        """The replica never worked and *exc* proves it cannot (see
        ``never_worked_and_cannot``)."""
        self.unusable_error = exc
        self._on_change()

    def backoff_seconds(self) -> float:
        """How long to wait after the failures so far (0 when none)."""
        if not self.failures:
            return 0.0
        return min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** (self.failures - 1))

    def never_worked_and_cannot(self, exc: BaseException) -> bool:
        """The replica never worked and *exc* says it cannot (credentials,
        permissions, no bucket, configuration)."""
        return not self.proven and isinstance(exc, LitetoolError) and cannot_heal(exc)

    def failed(self, exc: Exception, *, state: ReplicaState) -> None:
        self.failures += 1
        self.outage = isinstance(exc, StorageUnavailable) and not isinstance(exc, StorageThrottled)
        self._on_change()
        message = exc.render() if isinstance(exc, LitetoolError) else f"{type(exc).__name__}: {exc}"
        self.status(state=state, last_error=message, add={"sync_errors": 1})
        if cannot_heal(exc):
            # The same answer until someone fixes it: reported once (its message
            # names each request, the problem is the same).
            problem = getattr(exc, "problem", message)
            if problem == self._reported:
                self.log(
                    "debug", "sync failed", replica=self.name, error=message, attempt=self.failures
                )
                return
            self._reported = problem
        publish_and_log(
            self.board,
            self.log,
            "error",
            "sync failed",
            self.db_path,
            message,
            replica=self.name,
            error=message,
            attempt=self.failures,
        )

    # -- status ------------------------------------------------------------------------

    def published(self, generation: str, txid: int, time_us: int, now_us: int) -> None:
        """A record was published: the replica's position and traffic on the board."""
        self._on_change()
        self.status(
            generation=generation,
            published_txid=txid,
            published_time_us=time_us,
            last_sync_us=now_us,
            **self.traffic(),
        )

    def traffic(self) -> dict[str, dict[str, int]]:
        """Requests and bytes to the replica so far, by kind (status fields)."""
        stats = self.replica.stats.snapshot()
        return {
            "requests": {k: c.requests for k, c in stats.items()},
            "bytes": {k: c.bytes for k, c in stats.items()},
        }

    def status(self, **changes) -> ReplicaStatus:
        """Set fields of this replica's status (``add=``: counters to add to)."""
        return self.board.update_replica(self.db_path, self.name, **changes)
