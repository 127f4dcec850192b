"""The daemon (``litetool daemon --config``, a process of its own, with real
databases written by this process and real file replicas): several databases
at once, a clean stop on SIGTERM (final capture and sync, exit 0), exit
status UNREPLICATED_EXIT_CODE when committed transactions reached no replica,
and with ``--exec`` the child's exit status after the final sync. Every
replica that holds a database restores to exactly its rows."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import textwrap
from pathlib import Path

import pytest
from engine_builders import insert, new_app, unreachable_replica
from join_builders import litetool_running, terminate, toml_config, wait_until
from sync_builders import restore_with_cli, rows_of

from litetool.config.model import build_settings
from litetool.engine.daemon import UNREPLICATED_EXIT_CODE, run_daemon
from litetool.errors import ConfigError


def log_events(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def count(path, event: str) -> int:
    return sum(1 for e in log_events(path) if e["event"] == event)


def daemon_config(tmp_path, urls: dict[str, str | dict]) -> Path:
    """``litetool.toml`` in *tmp_path*: database ``NAME.db`` there replicated to
    its URL (replica ``r``, sync-interval 0s; or to the replica a dict gives),
    for each NAME in *urls*."""
    config = tmp_path / "litetool.toml"
    config.write_text(
        toml_config(
            [
                {
                    "path": str(tmp_path / f"{name}.db"),
                    "replicas": [
                        url
                        if isinstance(url, dict)
                        else {"url": url, "name": "r", "sync-interval": "0s"}
                    ],
                }
                for name, url in urls.items()
            ]
        )
    )
    return config


def test_sigterm_stops_every_database_cleanly_with_its_rows_on_its_replica(tmp_path):
    apps = {name: new_app(tmp_path / f"{name}.db", rows=3) for name in ("a", "b")}
    urls = {name: (tmp_path / f"replica-{name}").as_uri() for name in apps}
    config = daemon_config(tmp_path, urls)
    log = tmp_path / "litetool.log"
    with litetool_running(["daemon", "--config", str(config)], log, tmp_path) as proc:
        # Both databases replicate (the signal handlers are in place before).
        wait_until(lambda: count(log, "snapshot") >= 2, "a snapshot of each database")
        insert(apps["a"], *range(4, 24))
        insert(apps["b"], *range(100, 110))
        code = terminate(proc)
    events = log_events(log)
    assert code == 0, events[-5:]
    assert any(e["event"] == "signal" and e["signal"] == "SIGTERM" for e in events)
    stopped = sorted(e["db"] for e in events if e["event"] == "stopped")
    assert stopped == sorted(str(tmp_path / f"{name}.db") for name in apps)
    assert not [e for e in events if "unreplicated" in e["event"]]
    for name, app in apps.items():
        assert restore_with_cli(urls[name], tmp_path / f"restored-{name}.db") == rows_of(app)
        app.close()


def test_committed_transactions_on_no_replica_make_the_exit_status_non_zero(tmp_path):
    apps = {name: new_app(tmp_path / f"{name}.db", rows=2) for name in ("up", "down")}
    urls = {"up": (tmp_path / "replica").as_uri(), "down": unreachable_replica("r")}
    config = daemon_config(tmp_path, urls)
    log = tmp_path / "litetool.log"
    with litetool_running(["daemon", "--config", str(config)], log, tmp_path) as proc:
        wait_until(
            lambda: count(log, "snapshot") >= 1 and count(log, "sync failed") >= 1,
            "one replica working and the other failing",
        )
        insert(apps["up"], *range(3, 13))
        insert(apps["down"], *range(3, 13))
        code = terminate(proc)
    events = log_events(log)
    assert code == UNREPLICATED_EXIT_CODE, events[-5:]
    (per_database,) = [e for e in events if e["event"] == "stopped with unreplicated transactions"]
    assert per_database["db"] == str(tmp_path / "down.db")
    assert per_database["count"] >= 1
    (at_exit,) = [e for e in events if e["event"] == "exit with unreplicated transactions"]
    assert (at_exit["count"], at_exit["exit_code"]) == (per_database["count"], code)
    assert restore_with_cli(urls["up"], tmp_path / "restored.db") == rows_of(apps["up"])
    for app in apps.values():
        app.close()


CHILD = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    for value in range(1000, 1030):
        db.execute("INSERT INTO t VALUES (?)", (value,))
    db.close()
    sys.exit(7)
    """
)


def test_with_exec_the_daemon_stops_after_the_child_with_its_status_and_its_rows(tmp_path):
    app = new_app(tmp_path / "app.db", rows=3)
    url = (tmp_path / "replica").as_uri()
    config = daemon_config(tmp_path, {"app": url})
    (tmp_path / "child.py").write_text(CHILD)
    command = shlex.join([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "app.db")])
    log = tmp_path / "litetool.log"
    with litetool_running(
        ["daemon", "--config", str(config), "--exec", command], log, tmp_path
    ) as proc:
        code = proc.wait(60)
    events = log_events(log)
    assert code == 7, events[-5:]
    assert [e["status"] for e in events if e["event"] == "exec exited"] == [7]
    assert rows_of(app)[-1] == (1029,)
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    app.close()


def test_no_database_configured_is_a_configuration_error():
    settings = build_settings({}, {}, source=None)

    async def main():
        return await run_daemon(settings, log=lambda *a, **k: None, stop=asyncio.Event())

    with pytest.raises(ConfigError, match="no databases configured"):
        asyncio.run(main())
