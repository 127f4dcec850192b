"""Immutable statuses and events published by the engine.

The engine owns a ``StatusBoard``; it replaces whole frozen statuses (counters
are added under the board's lock, never read and written back) and appends
events, and never waits for a reader. Watchers (the TUI, the metrics
endpoint, ``litetool status``) read ``board.databases()`` and
``board.events_since(seq)`` whenever they like and may fall behind without
slowing replication: events live in a bounded ring.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

EVENT_RING_SIZE = 2000


class ReplicaState(StrEnum):
    """Where a replica's sync loop is (``ReplicaStatus.state``)."""

    STARTING = "starting"  # finding where the replica stands
    SNAPSHOTTING = "snapshotting"  # uploading a snapshot
    OK = "ok"  # its last sync succeeded
    BACKOFF = "backoff"  # its last sync failed; it retries
    DETACHED = "detached"  # it gave up its place in the spool; a snapshot follows
    CONFLICT = "conflict"  # another writer holds its generation
    ERROR = "error"  # it cannot be used (the error says why)
    STOPPED = "stopped"


class DatabaseState(StrEnum):
    """Where a database's replication is (``DatabaseStatus.state``)."""

    STARTING = "starting"
    REPLICATING = "replicating"
    ERROR = "error"  # capture failed (it retries)
    STOPPED = "stopped"


class EventKind(StrEnum):
    """What an ``Event`` tells, and the ``data`` fields it carries."""

    CAPTURED = "captured"  # first_txid, last_txid, time_us
    SYNCED = "synced"  # a replica published a segment: its txids and sizes
    CHECKPOINT = "checkpoint"  # litetool's own checkpoint: its mode and result
    GENERATION = "generation"  # a new generation began: its id and reason
    SNAPSHOT = "snapshot"  # a replica published a snapshot: its txid and size
    VALIDATION = "validation"  # a replica restored to exactly the live database
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @classmethod
    def of_level(cls, level: str) -> EventKind:
        """The kind of an event that only tells what its log line does."""
        return {"error": cls.ERROR, "warning": cls.WARNING}.get(level, cls.INFO)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    name: str
    url: str  # display form, credentials redacted
    state: ReplicaState = ReplicaState.STARTING
    generation: str | None = None
    published_txid: int = 0
    published_time_us: int = 0
    last_sync_us: int = 0
    last_error: str | None = None
    syncs: int = 0
    sync_errors: int = 0
    sync_seconds_total: float = 0.0
    snapshots: int = 0
    stalled: bool = False  # nothing published for a while with transactions waiting
    requests: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", ReplicaState(self.state))  # refuses a stray word


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    path: str
    state: DatabaseState = DatabaseState.STARTING
    generation: str | None = None
    generation_reason: str | None = None
    txid: int = 0
    last_commit_us: int = 0
    page_size: int = 0
    db_size_bytes: int = 0
    wal_size_bytes: int = 0
    wal_bytes_total: int = 0
    spool_bytes: int = 0
    spool_over_cap: bool = False
    backpressure: bool = False  # writers braked: a reachable replica lags
    checkpoints: dict[str, int] = field(default_factory=dict)
    checkpoint_seconds_total: float = 0.0
    writers_held_seconds_total: float = 0.0
    braked_seconds_total: float = 0.0
    capture_errors: int = 0
    task_failures: int = 0  # unexpected exceptions in litetool's own tasks (a bug)
    # Committed transactions that reached no replica when replication stopped.
    unreplicated: int = 0
    last_error: str | None = None
    replicas: tuple[ReplicaStatus, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", DatabaseState(self.state))  # refuses a stray word


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    time_us: int
    kind: EventKind
    database: str
    message: str
    replica: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class StatusBoard:
    """The latest status of every database plus a ring of recent events."""

    def __init__(self, *, version: str) -> None:
        self._lock = threading.Lock()
        self._databases: dict[str, DatabaseStatus] = {}
        self._events: deque[Event] = deque(maxlen=EVENT_RING_SIZE)
        self._seq = 0
        self.version = version
        self.started_us = int(time.time() * 1e6)

    def set_database(self, status: DatabaseStatus) -> None:
        with self._lock:
            self._databases[status.path] = status

    def update_database(
        self, path: str, *, add: Mapping[str, float] | None = None, **changes: Any
    ) -> DatabaseStatus:
        """Set *changes* and add *add* to counters (``capture_errors=1``), in one
        step: any thread may count, and no count is lost between a read and a
        write."""
        with self._lock:
            current = self._databases.get(path) or DatabaseStatus(path=path)
            updated = replace(current, **changes, **_added(current, add))
            self._databases[path] = updated
            return updated

    def update_replica(
        self, path: str, name: str, *, add: Mapping[str, float] | None = None, **changes: Any
    ) -> ReplicaStatus:
        """:meth:`update_database` for one replica of the database."""
        with self._lock:
            current = self._databases.get(path) or DatabaseStatus(path=path)
            replicas = list(current.replicas)
            for i, replica in enumerate(replicas):
                if replica.name == name:
                    updated = replicas[i] = replace(replica, **changes, **_added(replica, add))
                    break
            else:
                fresh = ReplicaStatus(name=name, url=changes.pop("url", ""))
                updated = replace(fresh, **changes, **_added(fresh, add))
                replicas.append(updated)
            self._databases[path] = replace(current, replicas=tuple(replicas))
            return updated

    def publish(
        self,
        kind: EventKind,
        database: str,
        message: str,
        *,
        replica: str | None = None,
        **data: Any,
    ) -> Event:
        with self._lock:
            self._seq += 1
            event = Event(
                self._seq, int(time.time() * 1e6), EventKind(kind), database, message, replica, data
            )
            self._events.append(event)
            return event

    def databases(self) -> tuple[DatabaseStatus, ...]:
        """The latest status of every database, as one consistent value."""
        with self._lock:
            return tuple(self._databases.values())

    def events_since(self, seq: int) -> list[Event]:
        with self._lock:
            return [event for event in self._events if event.seq > seq]

    def as_dict(self) -> dict[str, Any]:
        """The whole status as JSON-ready data (the /status endpoint), each
        replica with its lag as of now (``replica_lag``)."""
        databases = []
        for db in self.databases():
            entry = asdict(db)
            for replica, fields in zip(db.replicas, entry["replicas"], strict=True):
                fields["lag_transactions"], fields["lag_seconds"] = replica_lag(db, replica)
            databases.append(entry)
        return {
            "version": self.version,
            "started_us": self.started_us,
            "now_us": int(time.time() * 1e6),
            "databases": databases,
        }


def _added(status: DatabaseStatus | ReplicaStatus, add: Mapping[str, float] | None) -> dict:
    return {name: getattr(status, name) + amount for name, amount in (add or {}).items()}


def publish_and_log(
    board: StatusBoard,
    log: Callable[..., None],
    level: str,
    event: str,
    database: str,
    message: str,
    /,
    *,
    kind: EventKind | None = None,
    shown: tuple[str, ...] = (),
    event_fields: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Tell one thing both ways: an event on the board (``kind``, by default the
    one of the log level; ``message``, the ``replica`` field if any, the fields named in
    ``shown``, and ``event_fields``, which the log line does not carry), then
    the log line (``event`` with every field, in order; a field may be called
    ``message`` too)."""
    data = {name: fields[name] for name in shown} | (event_fields or {})
    board.publish(
        kind or EventKind.of_level(level), database, message, replica=fields.get("replica"), **data
    )
    log(level, event, **fields)


def replica_lag(database: DatabaseStatus, replica: ReplicaStatus) -> tuple[int, float]:
    """Transactions and commit-time seconds a replica is behind its database.

    The one definition behind ``/status``, ``/metrics``, ``litetool status``
    and the TUI: computed from the latest readings of both, so it never goes
    stale while a replica waits (a replica with nothing published yet is
    behind by every transaction)."""
    behind = max(0, database.txid - replica.published_txid) if replica.generation else database.txid
    seconds = (
        max(0.0, (database.last_commit_us - replica.published_time_us) / 1e6) if behind else 0.0
    )
    return behind, seconds
