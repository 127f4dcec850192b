"""Builders for the unit tests of the modules that join the engine's parts (the
capture thread, one database's replication, the daemon): a log that can be
waited on, a database's replication over a real database and real file
replicas with any database settings, one pass of the capture loop, and a
``litetool`` process run from a config file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engine_builders import Log

from litetool.config.model import build_settings
from litetool.engine.capture_thread import CaptureThread
from litetool.engine.replication import DatabaseReplication
from litetool.engine.runtime.status import Event, EventKind, StatusBoard

REPO = Path(__file__).resolve().parents[3]


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


def replication_of(
    tmp_path: Path,
    log: Log,
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
    database = {"path": str(tmp_path / "app.db"), **database_fields, "replicas": replicas}
    config = build_settings({"databases": [database]}, {}, source=None).databases[0]
    replication = DatabaseReplication(config, StatusBoard(version="test"), log=log)
    if opened:
        replication.side.open()
        replication.snapshots.leave()
    return replication, app, [r["url"] for r in replicas]


def one_pass(thread: CaptureThread) -> None:
    """One pass of the capture loop, in this thread: with the stop asked for
    beforehand, ``run`` goes round once (the final capture) and returns."""
    thread.stop()
    thread.run()


def events_of(board: StatusBoard, kind: EventKind, after: int = 0) -> list[Event]:
    return [event for event in board.events_since(after) if event.kind == kind]


def last_seq(board: StatusBoard) -> int:
    events = board.events_since(0)
    return events[-1].seq if events else 0


# -- a litetool process --------------------------------------------------------------------


def toml_config(databases: list[dict]) -> str:
    """A config file holding *databases* (values: str, int, bool; the
    ``replicas`` key: a list of such tables), logging JSON at debug."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = ['[log]\nlevel = "debug"\nformat = "json"\n']
    for database in databases:
        out.append("[[databases]]")
        out += [f"{k} = {value(v)}" for k, v in database.items() if k != "replicas"]
        for replica in database["replicas"]:
            out.append("  [[databases.replicas]]")
            out += [f"  {k} = {value(v)}" for k, v in replica.items()]
        out.append("")
    return "\n".join(out)


def start_litetool(args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    """``python -m litetool ARGS`` in a process of its own, its stderr (the log) to *log*."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "litetool", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    """Until another process made *condition* () true (bounded: a loaded
    machine can take seconds to start Python)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def terminate(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM, and the exit status once the process has stopped."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def named_sync(
    replication: DatabaseReplication, url: str, name: str, log: Log, *, sync_interval: float = 0.0
):
    """The sync of replica *name* (``url``) of *replication*, as ``run`` builds it."""
    from litetool.engine.sync.replica_sync import ReplicaSync
    from litetool.storage import Replica

    sync = ReplicaSync(
        name=name,
        replica=Replica.open(url),
        engine=replication,
        board=replication.board,
        db_path=str(replication.db_path),
        sync_interval=sync_interval,
        snapshot_interval=24 * 3600.0,
        retention=7 * 24 * 3600.0,
        gc_grace=3600.0,
        log=log,
    )
    replication.replicas.append(sync)
    return sync
