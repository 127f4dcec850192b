"""Every task litetool runs is supervised: nothing stops without saying so.

``supervised`` runs one asyncio task body. An exception it did not handle
itself (a bug, or an error of a kind nobody expected there) is logged at
error level with its traceback, counted on the status board
(``task_failures``, ``/metrics``: ``litetool_task_failures_total``) and
shown as the database's ``last_error``; then the body runs again after a
backoff (1 s doubling to 60 s). A body that returns is done. Once the stop
event is set, a failing body gets ``FINAL_ATTEMPTS`` more tries (a final
sync that keeps failing must not hold the process forever).

``Watchdog`` notices replication that stalls without an error: the captured
txid moves while a replica's published txid does not, for several sync
intervals. It logs an error, marks the replica ``stalled`` on the board
(``litetool_replica_stalled``) and says when replication goes on again.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable

from litetool.engine.runtime.status import StatusBoard, publish_and_log
from litetool.wording import plural

BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
FINAL_ATTEMPTS = 3
# A replica is stalled when it published nothing for this many sync
# intervals (and at least STALL_MIN_SECONDS) while transactions waited.
STALL_SYNC_INTERVALS = 5
STALL_MIN_SECONDS = 10.0


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def report_failure(
    board: StatusBoard,
    log: Callable[..., None],
    db_path: str,
    task: str,
    exc: BaseException,
    *,
    replica: str | None = None,
) -> None:
    """Log an unexpected exception with its traceback and show it on the board."""
    message = f"{task} failed unexpectedly: {describe(exc)}"
    board.update_database(db_path, last_error=message, add={"task_failures": 1})
    if replica is not None:
        board.update_replica(db_path, replica, last_error=message)
    fields = {"replica": replica} if replica is not None else {}
    publish_and_log(
        board,
        log,
        "error",
        "task failed",
        db_path,
        message,
        shown=("task",),
        task=task,
        error=describe(exc),
        traceback="".join(traceback.format_exception(exc)).rstrip(),
        **fields,
    )


async def supervised(
    task: str,
    body: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    board: StatusBoard,
    log: Callable[..., None],
    db_path: str,
    replica: str | None = None,
) -> None:
    """Run ``body`` until it returns; restart it (with backoff) when it raises."""
    failures = 0
    final_failures = 0
    while True:
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the supervisor's whole point
            failures += 1
            report_failure(board, log, db_path, task, exc, replica=replica)
            if stop.is_set():
                final_failures += 1
                if final_failures >= FINAL_ATTEMPTS:
                    log("error", "task gave up", task=task, attempts=final_failures)
                    return
                continue
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** (failures - 1))
            log("info", "task restarts", task=task, seconds=delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass


class Watchdog:
    """Flags replicas that publish nothing while transactions wait (see module doc)."""

    def __init__(
        self,
        board: StatusBoard,
        log: Callable[..., None],
        db_path: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board = board
        self.log = log
        self.db_path = db_path
        self.clock = clock
        # replica -> (published txid, its engine generation, when either last changed)
        self._seen: dict[str, tuple[int, str | None, float]] = {}
        self.stalled: set[str] = set()

    def check(self, engine_txid: int, engine_generation: str, replicas) -> None:
        """``replicas``: (name, published txid or -1, the engine generation its
        txids belong to or None, sync interval, when it last stored an object
        (``clock`` time)) for each replica."""
        now = self.clock()
        for name, published, generation, sync_interval, active_at in replicas:
            limit = max(STALL_MIN_SECONDS, STALL_SYNC_INTERVALS * sync_interval)
            caught_up = generation == engine_generation and published >= engine_txid
            last = self._seen.get(name)
            if last is None or caught_up or (published, generation) != last[:2]:
                self._seen[name] = (published, generation, now)
                if name in self.stalled:
                    self.stalled.discard(name)
                    self.board.update_replica(self.db_path, name, stalled=False)
                    self.log("info", "replication resumed", replica=name, txid=published)
                continue
            waited = now - max(last[2], active_at)  # a snapshot upload is progress too
            if waited >= limit and name not in self.stalled:
                self.stalled.add(name)
                behind = engine_txid - published if generation == engine_generation else None
                message = (
                    f"replication to {name} stalled: nothing published for {waited:.0f}s "
                    f"while the database moved on"
                    + (f" ({plural(behind, 'transaction')} waiting)" if behind is not None else "")
                )
                self.board.update_replica(self.db_path, name, stalled=True, last_error=message)
                publish_and_log(
                    self.board,
                    self.log,
                    "error",
                    "replication stalled",
                    self.db_path,
                    message,
                    replica=name,
                    published_txid=published,
                    txid=engine_txid,
                    seconds=round(waited, 1),
                )
