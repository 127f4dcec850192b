"""Builders for the engine's unit tests: a log that records what the engine
logs, a capture side over a real database, and a replica's health reporter
over a real file replica."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from litetool.config.model import build_settings
from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.runtime.status import StatusBoard
from litetool.engine.sync.replica_health import ReplicaHealth
from litetool.storage import Replica


class Log:
    """The engine's log lines, (level, event, fields) in order; ``seen(event)``
    is set once a line of that event was logged (from any thread)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []
        self._seen: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, level: str, event: str, **fields) -> None:
        with self._lock:
            self.lines.append((level, event, fields))
            self.seen(event).set()

    def seen(self, event: str) -> threading.Event:
        return self._seen.setdefault(event, threading.Event())

    def fields(self, event: str) -> list[dict]:
        """The fields of every line of *event*."""
        with self._lock:
            return [fields for _level, name, fields in self.lines if name == event]


def open_capture_side(
    tmp_path: Path, url: str, log: Callable[..., None], *, rows: int = 0, **database_fields
) -> tuple[CaptureSide, sqlite3.Connection]:
    """A WAL database ``app.db`` with a table ``t(x)`` holding 1..*rows* before
    litetool opens it (written by the returned application connection), and an
    open capture side replicating it to *url*."""
    db = tmp_path / "app.db"
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE t(x)")
    for row in range(1, rows + 1):
        app.execute("INSERT INTO t VALUES (?)", (row,))
    database = {"path": str(db), **database_fields, "replicas": [{"url": url}]}
    config = build_settings({"databases": [database]}, {}, source=None).databases[0]
    side = CaptureSide(config, StatusBoard(version="test"), [], log=log)
    side.open()
    return side, app


async def file_replica_health(
    tmp_path: Path, log: Callable[..., None]
) -> tuple[Replica, ReplicaHealth]:
    """A formatted file replica in ``tmp_path/replica`` and the health reporter
    of replica ``m`` of database ``/db/app.db``."""
    replica = Replica.open((tmp_path / "replica").as_uri())
    await replica.ensure_format(create=True)
    health = ReplicaHealth(
        name="m",
        replica=replica,
        board=StatusBoard(version="test"),
        db_path="/db/app.db",
        log=log,
    )
    return replica, health
