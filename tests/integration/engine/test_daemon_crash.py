"""The daemon under SIGKILL: nothing it reported replicated is ever lost.

A writer process commits one row per transaction (ids 1, 2, 3, ...) and keeps
its connection open, as an application server does. The daemon
(``litetool replicate``, a separate process) is SIGKILLed and restarted
several times mid-stream. Every (generation, txid) the daemon reported as
synced must restore to a whole prefix of the rows with integrity ok, and the
final restore must hold every row.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

WRITER = textwrap.dedent(
    """
    import os, sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, data BLOB)")
    stop = sys.argv[2]
    i = 0
    while not os.path.exists(stop):
        i += 1
        db.execute("INSERT INTO t(id, data) VALUES (?, ?)", (i, os.urandom(200 + i % 2000)))
        if os.path.exists(stop + ".truncate"):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            os.unlink(stop + ".truncate")
        time.sleep(0.004)
    print(i)
    db.close()
    """
)


def start_daemon(db: Path, url: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "litetool",
            "replicate",
            str(db),
            url,
            "--sync-interval",
            "0s",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ],
        stderr=open(log, "a"),
    )


def wait_for_syncs(log: Path, after: int, count: int = 3, timeout: float = 60.0) -> None:
    """Wait until the daemon has logged ``count`` more syncs (a loaded machine
    can take seconds just to start Python)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and log.read_text().count('"synced"') >= after + count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the daemon logged no progress in {timeout}s: {log.read_text()}")


def synced_count(log: Path) -> int:
    return log.read_text().count('"synced"') if log.exists() else 0


def synced_positions(log: Path) -> list[tuple[str, int]]:
    out = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "synced":
            out.append((event["generation"], int(event["txids"].split("..")[1])))
        elif event["event"] == "snapshot":
            out.append((event["generation"], int(event["txid"])))
    return out


def restore(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litetool", "restore", "-o", str(out), *extra, url],
        capture_output=True,
        text=True,
    )


def check_prefix(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")]
        assert ids == list(range(1, len(ids) + 1)), "restored rows are not a whole prefix"
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert names == {"t"}, names  # no litetool tables
        return len(ids)
    finally:
        conn.close()


def test_sigkill_restarts_and_application_truncate(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    url = (tmp_path / "replica").as_uri()
    log = tmp_path / "daemon.log"
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        for cycle in range(4):
            before = synced_count(log)
            daemon = start_daemon(db, url, log)
            wait_for_syncs(log, before)
            time.sleep(0.1 * cycle)  # kill at different points of the stream
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            if cycle == 2:
                # While litetool is down, the application truncates the WAL.
                Path(f"{stop}.truncate").touch()
                deadline = time.time() + 10
                while Path(f"{stop}.truncate").exists() and time.time() < deadline:
                    time.sleep(0.01)
            time.sleep(0.3)
        before = synced_count(log)
        daemon = start_daemon(db, url, log)
        wait_for_syncs(log, before)
        stop.touch()
        total = int(writer.communicate(timeout=30)[0])
        time.sleep(0.5)
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=60) == 0
    finally:
        stop.touch()
        if writer.poll() is None:
            writer.kill()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    reasons = [e.get("reason") for e in events if e["event"] == "new generation"]
    assert reasons[0] == "first run"
    assert any("while litetool was not running" in (r or "") for r in reasons[1:]), reasons

    positions = synced_positions(log)
    assert len(positions) > 10
    # Every reported position restores to a consistent prefix; later positions
    # of a generation never hold fewer rows than earlier ones.
    seen: dict[str, int] = {}
    for i, (generation, txid) in enumerate(positions[:: max(1, len(positions) // 12)]):
        out = tmp_path / f"at-{i}.db"
        result = restore(url, out, "--generation", generation, "--txid", str(txid))
        assert result.returncode == 0, result.stderr
        rows = check_prefix(out)
        assert rows >= seen.get(generation, 0)
        seen[generation] = rows

    final = tmp_path / "final.db"
    result = restore(url, final)
    assert result.returncode == 0, result.stderr
    assert check_prefix(final) == total
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("final.db")]
    assert leftovers == ["final.db"], leftovers
