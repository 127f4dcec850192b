"""Builders for the engine's unit tests: a log that records what the engine
logs, a database written by the application, its settings, a capture side
or a whole replication over it, and a replica's health reporter over a real
file replica."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from litetool.config.model import DatabaseConfig, build_settings
from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.replication import DatabaseReplication
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


def new_app(db: Path, rows: int = 0) -> sqlite3.Connection:
    """A WAL database with a table ``t(x)`` holding 1..*rows*, and the
    application's connection to it (autocommit: one transaction per statement;
    usable from another thread)."""
    app = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE t(x)")
    insert(app, *range(1, rows + 1))
    return app


def insert(app: sqlite3.Connection, *values) -> None:
    """One committed transaction per value."""
    for value in values:
        app.execute("INSERT INTO t VALUES (?)", (value,))


def checked_rows(path: Path) -> list[tuple]:
    """Every row of table ``t``, in rowid order, after SQLite found the
    database *path* sound (``PRAGMA integrity_check``)."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    finally:
        conn.close()


def database_settings(db: Path, replicas: list[dict], **database_fields) -> DatabaseConfig:
    """The settings of database *db* replicated to *replicas*, with the database
    settings *database_fields* (kebab-case keys), as the config file gives them."""
    database = {"path": str(db), **database_fields, "replicas": replicas}
    return build_settings({"databases": [database]}, {}, source=None).databases[0]


def open_capture_side(
    tmp_path: Path, url: str, log: Callable[..., None], *, rows: int = 0, **database_fields
) -> tuple[CaptureSide, sqlite3.Connection]:
    """A WAL database ``app.db`` with a table ``t(x)`` holding 1..*rows* before
    litetool opens it (written by the returned application connection), and an
    open capture side replicating it to *url*."""
    app = new_app(tmp_path / "app.db", rows)
    config = database_settings(tmp_path / "app.db", [{"url": url}], **database_fields)
    side = CaptureSide(config, StatusBoard(version="test"), [], log=log)
    side.open()
    return side, app


def unreachable_replica(name: str, **fields) -> dict:
    """A replica whose store never answers (nothing listens on 127.0.0.1:1):
    every sync fails with a connection refused, and is retried."""
    return {
        "url": "s3://bucket/replica",
        "name": name,
        "endpoint": "http://127.0.0.1:1",
        "region": "us-east-1",
        "access-key-id": "key",
        "secret-access-key": "secret",
        "max-retries": 0,
        **fields,
    }


def replication_of(
    tmp_path: Path,
    log: Callable[..., None],
    *,
    rows: int = 0,
    replicas: list[dict] | None = None,
    opened: bool = False,
    **database_fields,
) -> tuple[DatabaseReplication, sqlite3.Connection, list[str]]:
    """The replication of a new database ``tmp_path/app.db`` (see ``new_app``),
    to *replicas* (default: one file replica ``m`` in ``tmp_path/replica`` with
    sync-interval 0s), with the database settings *database_fields*
    (kebab-case keys). ``opened``: the capture side is open (``side.open``) and
    snapshot requests are served where they are asked (no capture thread);
    otherwise nothing is open yet (``run`` opens it). Returns the replication,
    the application's connection and the replica URLs."""
    app = new_app(tmp_path / "app.db", rows)
    if replicas is None:
        replicas = [{"url": (tmp_path / "replica").as_uri(), "name": "m", "sync-interval": "0s"}]
    config = database_settings(tmp_path / "app.db", replicas, **database_fields)
    replication = DatabaseReplication(config, StatusBoard(version="test"), log=log)
    if opened:
        replication.side.open()
        replication.snapshots.leave()
    return replication, app, [r["url"] for r in replicas]


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
