"""The first hour with the command line, on a real database replicated by a real daemon.

A daemon replicates ``app.db`` to a local file replica with a sync interval of an
hour: its first snapshot is published at once, then the transactions committed
afterwards wait in the spool, so the replica is behind by exactly those. What
``generations`` says about that lag, and what ``restore`` and ``replicate`` say
about paths that are not there, is checked through the real ``litetool``
command in a child process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROWS_WAITING = 5


def litetool(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litetool", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def write_config(path: Path, db: Path, replica_url: str, metrics_addr: str | None) -> Path:
    metrics = f'[metrics]\naddr = "{metrics_addr}"\n' if metrics_addr else ""
    path.write_text(
        metrics + f'[[databases]]\npath = "{db}"\n'
        f'[[databases.replicas]]\nname = "local"\nurl = "{replica_url}"\n'
        'sync-interval = "1h"\n'
    )
    return path


@dataclass(frozen=True)
class Running:
    directory: Path
    db: Path
    replica_url: str
    config: Path
    addr: str


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A daemon with /status, whose replica is ROWS_WAITING transactions behind."""
    directory = tmp_path_factory.mktemp("first-hour")
    db = directory / "app.db"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER)")
    replica_url = (directory / "replica").as_uri()
    addr = f"127.0.0.1:{free_port()}"
    config = write_config(directory / "litetool.toml", db, replica_url, addr)
    log = open(directory / "daemon.log", "wb")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [sys.executable, "-m", "litetool", "daemon", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def status() -> dict | None:
        result = litetool("status", "--addr", addr, "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    try:
        wait_for(lambda: any((directory / "replica").rglob("index/*")), "the first snapshot")
        for n in range(ROWS_WAITING):
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
        wait_for(
            lambda: (s := status()) and s["databases"][0]["txid"] >= ROWS_WAITING,
            "the daemon to capture the transactions",
        )
        yield Running(directory, db, replica_url, config, addr)
    finally:
        connection.close()
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
            log.close()


def generation_rows(stdout: str) -> list[dict[str, str]]:
    header, *lines = stdout.splitlines()
    starts = [header.index(name) for name in header.split()]
    names = header.split()
    return [
        {
            name: line[start:end].strip()
            for name, start, end in zip(names, starts, [*starts[1:], None], strict=True)
        }
        for line in lines
    ]


# -- generations: LAG -----------------------------------------------------------------------


def test_generations_of_a_configured_database_shows_the_daemons_lag(running):
    """The LAG of a database from the config is the daemon's own replica_lag, the one
    `litetool status` shows (it was the database file's age, with or without a lag)."""
    status = json.loads(litetool("status", "--addr", running.addr, "--json").stdout)
    replica = status["databases"][0]["replicas"][0]
    assert replica["lag_transactions"] == ROWS_WAITING
    result = litetool("generations", "--config", str(running.config), str(running.db))
    assert result.returncode == 0, result.stderr
    (row,) = generation_rows(result.stdout)
    assert row["LAG"] == f"{ROWS_WAITING} tx / {replica['lag_seconds']:.1f}s"
    assert result.stderr == ""
    as_json = litetool("generations", "--json", "--config", str(running.config), str(running.db))
    (entry,) = json.loads(as_json.stdout)
    assert (entry["lag_transactions"], entry["lag_seconds"]) == (
        ROWS_WAITING,
        replica["lag_seconds"],
    )


def test_generations_of_a_replica_url_says_the_lag_is_unknown(running):
    """It was blank: a replica URL names no database, so nothing says how far it is behind."""
    result = litetool("generations", running.replica_url)
    assert result.returncode == 0, result.stderr
    (row,) = generation_rows(result.stdout)
    assert row["LAG"] == "unknown"
    assert result.stderr.startswith("note: lag unknown: a replica URL alone does not say")
    (entry,) = json.loads(litetool("generations", "--json", running.replica_url).stdout)
    assert entry["lag_transactions"] is None and entry["lag_seconds"] is None


def test_generations_without_a_daemon_to_ask_says_why_the_lag_is_unknown(running, tmp_path):
    no_daemon = write_config(
        tmp_path / "elsewhere.toml", running.db, running.replica_url, f"127.0.0.1:{free_port()}"
    )
    no_metrics = write_config(tmp_path / "plain.toml", running.db, running.replica_url, None)
    for config, why in [
        (no_daemon, "no litetool daemon answers at 127.0.0.1:"),
        (no_metrics, "metrics.addr is not set in the config"),
    ]:
        result = litetool("generations", "--config", str(config), str(running.db))
        assert result.returncode == 0, result.stderr
        (row,) = generation_rows(result.stdout)
        assert row["LAG"] == "unknown"
        assert result.stderr.startswith(f"note: lag unknown: {why}"), result.stderr


# -- paths that are not there -----------------------------------------------------------------


def test_restore_and_replicate_refuse_a_missing_directory_alike(running, tmp_path):
    """restore -o /missing/dir/x.db created /missing/dir and restored there."""
    out = tmp_path / "missing" / "dir" / "x.db"
    restore = litetool("restore", "-o", str(out), running.replica_url)
    assert restore.returncode == 1
    assert restore.stdout == ""
    assert restore.stderr == (
        f"error: output directory not found: {out.parent} "
        "(hint: create it first, or check the path)\n"
    )
    db = tmp_path / "missing" / "dir" / "app.db"
    replicate = litetool("replicate", str(db), (tmp_path / "replica").as_uri())
    assert replicate.returncode == 1
    assert replicate.stderr == (
        f"error: database not found: {db} (hint: create it first, or check the path)\n"
    )
    assert os.listdir(tmp_path) == []


def test_a_restore_says_its_rate_and_counts_in_words_that_fit(running, tmp_path):
    result = litetool("restore", "-o", str(tmp_path / "restored.db"), running.replica_url)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.splitlines()[-1]
    # e.g. "(393 B in 2 objects, 0.01s, 35.1 KiB/s)": this replica is a few hundred bytes,
    # which used to be "0.1 MiB/s" or "0.0 MiB/s"
    found = re.search(
        r"\((\d+ B|[\d.]+ [KMG]iB) in (?P<count>\d+) (?P<noun>objects?), [\d.]+s, "
        r"(?P<rate>\d+ B|[\d.]+ [KMG]iB)/s\)$",
        summary,
    )
    assert found, summary
    assert found["noun"] == ("object" if found["count"] == "1" else "objects"), summary
    value, unit = found["rate"].split()
    assert unit == "B" or float(value) >= 1.0, summary  # the unit that suits the rate
    with sqlite3.connect(tmp_path / "restored.db") as restored:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
