"""``litetool tui`` argument resolution: what the app is given for each kind of invocation."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import terminal

from litetool.cli import build_parser
from litetool.engine.runtime.status import StatusBoard
from litetool.errors import ConfigError, UsageError


@pytest.fixture
def launched(monkeypatch):
    """Run ``litetool tui ...`` up to the point where the app would start."""
    monkeypatch.delenv("LITETOOL_CONFIG", raising=False)
    seen = []

    def fake_run_tui(options):
        seen.append(options)
        return 0

    monkeypatch.setattr("litetool.tui.app.run_tui", fake_run_tui)

    def launch(*argv: str):
        args = build_parser().parse_args(["tui", *argv])
        assert args._module.run(args) == 0
        return seen[-1]

    return launch


def write_config(tmp_path, *, metrics_addr: str = "") -> tuple:
    db = tmp_path / "app.db"
    replica = (tmp_path / "replica").as_uri()
    config = tmp_path / "litetool.toml"
    text = f"""
[metrics]
addr = "{metrics_addr}"

[[databases]]
path = "{db}"

[[databases.replicas]]
url = "{replica}"
name = "local"

[[databases.replicas]]
url = "{(tmp_path / "second").as_uri()}"
"""
    config.write_text(text)
    return config, db, replica


def test_a_replica_url_is_browsed_read_only(launched):
    options = launched("file:///backups/app")
    assert not options.has_live and not options.runs_engine
    (target,) = options.replicas
    assert target.url == "file:///backups/app" and target.restore_args == ("file:///backups/app",)


def test_a_config_runs_the_engine_in_process(launched, tmp_path):
    config, db, replica = write_config(tmp_path)
    options = launched("--config", str(config))
    assert options.runs_engine and options.board is not None and options.attach_addr is None
    assert [d.path for d in options.engine_settings.databases] == [db]
    local, second = options.replicas
    assert (local.name, local.url, local.database) == ("local", replica, str(db))
    assert local.restore_args == ("--config", str(config), "--replica", "local", str(db))
    assert second.name == "file1" and second.restore_args[-2:] == ("file1", str(db))


def test_a_database_path_picks_it_from_the_config(launched, tmp_path):
    config, db, _ = write_config(tmp_path)
    options = launched("--config", str(config), str(db))
    assert [d.path for d in options.engine_settings.databases] == [db]
    with pytest.raises(ConfigError, match="not in the configuration"):
        launched("--config", str(config), str(tmp_path / "other.db"))


def _serve_status(board: StatusBoard) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(board.as_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def test_a_running_daemon_at_metrics_addr_is_attached_instead(launched, tmp_path):
    server, addr = _serve_status(StatusBoard(version="x"))
    try:
        config, _, _ = write_config(tmp_path, metrics_addr=addr)
        options = launched("--config", str(config))
    finally:
        server.shutdown()
    assert options.attach_addr == addr and not options.runs_engine
    assert len(options.replicas) == 2 and not options.replicas_from_status


def test_attach_without_config_browses_the_daemons_replicas(launched):
    options = launched("--attach", "127.0.0.1:9090")
    assert options.attach_addr == "127.0.0.1:9090" and options.replicas == ()
    assert options.replicas_from_status


def test_attach_with_a_replica_url(launched):
    options = launched("--attach", "127.0.0.1:9090", "s3://bucket/app")
    assert options.attach_addr == "127.0.0.1:9090" and len(options.replicas) == 1
    assert not options.replicas_from_status


def test_bad_invocations_are_one_line_errors(launched, tmp_path):
    with pytest.raises(UsageError, match="nothing to show"):
        launched()
    with pytest.raises(ConfigError, match="--attach: expected HOST:PORT"):
        launched("--attach", "nowhere")
    with pytest.raises(UsageError, match="neither a replica URL nor a database"):
        launched(str(tmp_path / "missing.db"))


def test_a_database_that_does_not_exist_is_said_on_screen_and_printed_on_quit(tmp_path):
    # As a new user meets it: a config naming a database not created yet.
    config, db, _ = write_config(tmp_path)
    session = terminal.start(["tui", "--config", str(config)], cwd=str(tmp_path))
    session.read_until(b"database not found")  # on the screen, above the tables
    session.press("q")
    assert session.wait() == 1
    printed = [line for line in session.after_screen().splitlines() if line.strip()]
    assert len(printed) == 1 and printed[0].startswith(f"error: database not found: {db}")
