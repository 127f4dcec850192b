"""A real application and a real litetool, each in its own process.

``App`` is a long-lived Python process holding (or not) an ordinary sqlite3
connection to the database, driven over a pipe one step at a time, so that
what it does while litetool is stopped or killed is exactly what an
application does: update, insert, delete, checkpoint in any mode, VACUUM,
change the page size or the journal mode, close (SQLite then checkpoints and
deletes the WAL) and open again.

``Litetool`` runs ``litetool replicate`` as a separate process with JSON logs
and a status endpoint; it can be stopped (SIGTERM: final capture and sync)
or killed (SIGKILL) at a chosen moment.

``content`` reads a database's schema and every row, so a restore can be
compared with the live database row for row.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

APP = r"""
import json, os, random, sqlite3, sys, time
path = sys.argv[1]
rng = random.Random(int(sys.argv[2]))
conn = None

def open_db():
    c = sqlite3.connect(path, isolation_level=None, timeout=30)
    c.execute("PRAGMA busy_timeout=30000")
    return c

def step(op, arg):
    global conn
    if op == "open":
        conn = open_db()
    elif op == "close":
        conn.close()
        conn = None
    elif op == "create":
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INT, v TEXT)")
        conn.execute("CREATE INDEX t_n ON t(n)")
    elif op == "insert":
        conn.execute("BEGIN")
        for _ in range(int(arg)):
            conn.execute("INSERT INTO t(n, v) VALUES (?, ?)",
                         (rng.randrange(1000), os.urandom(rng.randrange(20, 300)).hex()))
        conn.execute("COMMIT")
    elif op == "commits":  # one transaction per row
        for _ in range(int(arg)):
            conn.execute("INSERT INTO t(n, v) VALUES (?, ?)", (rng.randrange(1000), "c" * 50))
    elif op == "update":
        ids = [r[0] for r in conn.execute("SELECT id FROM t")]
        conn.execute("BEGIN")
        for i in rng.sample(ids, min(int(arg), len(ids))):
            conn.execute("UPDATE t SET n = n + 1, v = ? WHERE id = ?", (os.urandom(40).hex(), i))
        conn.execute("COMMIT")
    elif op == "delete_third":
        conn.execute("DELETE FROM t WHERE id % 3 = 0")
    elif op == "checkpoint":
        return list(conn.execute(f"PRAGMA wal_checkpoint({arg})").fetchone())
    elif op == "vacuum":
        conn.execute("VACUUM")
    elif op == "page_size":  # a page size change needs a rollback journal
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"PRAGMA page_size={int(arg)}")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode=WAL")
    elif op == "autocheckpoint":  # SQLite's automatic checkpoint: every N frames, 0 = off
        conn.execute(f"PRAGMA wal_autocheckpoint={int(arg)}")
    elif op == "journal_mode":
        return conn.execute(f"PRAGMA journal_mode={arg}").fetchone()[0]
    elif op == "sql":
        return [list(r) for r in conn.execute(arg).fetchall()]
    elif op == "begin_read":  # a long-running reader: it blocks checkpoints
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM t").fetchone()
    elif op == "end_read":
        conn.execute("COMMIT")
    elif op == "sleep":
        time.sleep(float(arg))
    else:
        raise ValueError(f"unknown step {op}")
    return None

for line in sys.stdin:
    op, arg = json.loads(line)
    try:
        reply = {"ok": True, "result": step(op, arg)}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class App:
    """An application process with an ordinary sqlite3 connection."""

    def __init__(self, db: Path, seed: int = 1) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-c", APP, str(db), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def do(self, op: str, arg: object = None) -> object:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([op, arg]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the application process died during {op} {arg}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(f"application step {op} {arg} failed: {reply['error']}")
        return reply["result"]

    def steps(self, script: str) -> None:
        """Run ``op arg; op arg; ...`` (e.g. ``update 100; checkpoint TRUNCATE``)."""
        for part in script.split(";"):
            words = part.split()
            if words:
                self.do(words[0], words[1] if len(words) > 1 else None)

    def quit(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


# Every litetool process the harness started: a test that fails midway
# leaves none running (``kill_leftovers``, after each test: tests/conftest.py).
_STARTED: list[subprocess.Popen] = []


def kill_leftovers() -> int:
    """SIGKILL every litetool process the harness started that still runs;
    returns how many there were."""
    left = [proc for proc in _STARTED if proc.poll() is None]
    for proc in left:
        proc.kill()
        proc.wait(timeout=30)
    _STARTED.clear()
    return len(left)


class Litetool:
    """``litetool replicate DB URL`` in its own process."""

    def __init__(
        self,
        db: Path,
        url: str,
        log: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        config: Path | None = None,
    ) -> None:
        """``litetool replicate DB URL`` or, with ``config``, ``litetool daemon``."""
        self.db, self.url, self.log_path, self.extra = db, url, log, extra
        self.env = env or {}
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.addr = ""
        self._log_start = 0

    def start(self, *, wait: bool = True) -> None:
        """Start the process; with ``wait``, until its status endpoint listens."""
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.config is not None:
            command = ["daemon", "--config", str(self.config)]
        else:
            command = ["replicate", str(self.db), self.url, "--sync-interval", "0s"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "litetool",
                *command,
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "--metrics-addr",
                "127.0.0.1:0",
                *self.extra,
            ],
            stderr=open(self.log_path, "a"),  # noqa: SIM115 - closed with the process
            env=env,
        )
        _STARTED.append(self.proc)
        if wait:
            self.addr = self._wait_event("metrics listening")["addr"]

    def events(self, since_start: bool = True) -> list[dict]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        if since_start:
            text = text.encode()[self._log_start :].decode(errors="replace")
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_event(self, name: str, *, after: str | None = None, timeout: float = 60.0) -> dict:
        """The first event ``name`` logged since start (and after an event ``after``)."""
        return self._wait_event(name, timeout=timeout, after=after)

    def _wait_event(self, name: str, timeout: float = 60.0, after: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen_after = after is None
            for event in self.events():
                if event.get("event") == after:
                    seen_after = True
                elif seen_after and event.get("event") == name:
                    return event
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"litetool exited ({self.proc.returncode}): {self.tail()}")
            time.sleep(0.02)
        raise AssertionError(f"litetool logged no {name!r} in {timeout}s: {self.tail()}")

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://{self.addr}/status", timeout=5) as response:
            return json.loads(response.read())

    def wait_caught_up(self, timeout: float = 60.0) -> dict:
        """Until every replica has published everything captured, twice in a row
        100 ms apart (the application is quiet when this is called)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            db = self.status()["databases"][0]
            replicas = db["replicas"]
            done = (
                db["state"] == "replicating"
                and replicas
                and all(r["state"] == "ok" and r["published_txid"] == db["txid"] for r in replicas)
            )
            key = (db["generation"], db["txid"])
            if done and seen == key:
                return db
            seen = key if done else None
            time.sleep(0.1)
        raise AssertionError(f"litetool did not catch up in {timeout}s: {self.status()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def content(path: Path) -> tuple[list, list]:
    """(schema, rows) of a database, read-only; integrity must be ok."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", path
        schema = conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        rows = conn.execute("SELECT id, n, v FROM t ORDER BY id").fetchall()
        return schema, rows
    finally:
        conn.close()


def assert_same_content(restored: Path, live: Path) -> None:
    """The restored database equals the live one, schema and row for row."""
    schema_r, rows_r = content(restored)
    schema_l, rows_l = content(live)
    assert schema_r == schema_l, "the schemas differ"
    if rows_r != rows_l:
        by_id_r, by_id_l = dict((r[0], r) for r in rows_r), dict((r[0], r) for r in rows_l)
        missing = sorted(set(by_id_l) - set(by_id_r))[:5]
        extra = sorted(set(by_id_r) - set(by_id_l))[:5]
        changed = sorted(i for i in set(by_id_l) & set(by_id_r) if by_id_l[i] != by_id_r[i])[:5]
        raise AssertionError(
            f"restored {len(rows_r)} rows, live {len(rows_l)}: missing ids {missing}, "
            f"extra ids {extra}, different ids {changed}"
        )


def assert_restores_live(url: str, live: Path, out: Path) -> None:
    """The latest restore of ``url`` (into ``out``) equals the live database."""
    result = restore(url, out)
    assert result.returncode == 0, result.stderr
    assert_same_content(out, live)


def restore(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litetool", "restore", "-o", str(out), *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def daemon_settings(db: Path, url: str, **database: object):
    """Settings for ``run_daemon`` in this process: ``db`` replicated to one
    replica named "local" at ``url``, synced at once; ``database`` adds
    per-database options (``**{"snapshot-interval": "2s"}``)."""
    from litetool.config import load_settings

    replica = {"url": url, "name": "local", "sync-interval": "0s"}
    return load_settings(
        None,
        overrides={"databases": [{"path": str(db), **database, "replicas": [replica]}]},
        use_files=False,
    )
