"""The live screen fed by an in-process engine, an attached daemon, or an unreachable one."""

from __future__ import annotations

import fcntl
import os
import socket

from replica_builders import make_database
from screen_capture import screen_text, wait_for
from textual.widgets import DataTable

from litetool.config import load_settings
from litetool.engine.metrics import MetricsServer
from litetool.engine.status import StatusBoard
from litetool.storage import Replica
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.live_screen import LiveScreen

SIZE = (160, 40)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_settings(db_path, url, sync_interval):
    return load_settings(
        None,
        overrides={
            "databases": [
                {
                    "path": str(db_path),
                    "replicas": [{"url": url, "name": "replica", "sync-interval": sync_interval}],
                }
            ]
        },
        use_files=False,
    )


def db_status(board: StatusBoard):
    (status,) = board.snapshot()
    return status


def cell(table: DataTable, row_key: str, column: str) -> str:
    return str(table.get_cell(row_key, column))


async def test_in_process_engine_live_then_final_sync_on_quit(tmp_path):
    db_path = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    connection = make_database(db_path)
    board = StatusBoard(version="test")
    # A long sync interval: after the first snapshot nothing is uploaded until the
    # final sync that quitting must run.
    settings = engine_settings(db_path, url, "1h")
    target = ReplicaTarget("replica", url, (url,), database=str(db_path))
    app = LitetoolApp(TuiOptions(replicas=(target,), board=board, engine_settings=settings))
    async with app.run_test(size=SIZE) as pilot:
        live = app.screen
        assert isinstance(live, LiveScreen)
        await wait_for(
            pilot,
            lambda: (
                board.snapshot()
                and db_status(board).replicas
                and db_status(board).replicas[0].state == "ok"
            ),
            what="the first snapshot",
        )
        first = db_status(board).txid
        for n in range(5):
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
        await wait_for(pilot, lambda: db_status(board).txid == first + 5, what="capture")
        await pilot.pause(0.6)  # one refresh of the screen
        databases = live.query_one("#databases", DataTable)
        replicas = live.query_one("#replicas", DataTable)
        assert cell(databases, str(db_path), "txid") == str(first + 5)
        assert cell(databases, str(db_path), "state") == "replicating"
        assert cell(replicas, f"{db_path}\0replica", "state") == "ok"
        assert cell(replicas, f"{db_path}\0replica", "lag") == "5"  # waiting for its interval
        text = screen_text(app)
        assert "captured" in text and "snapshot at txid" in text
        assert "in-process engine · 1 database" in text

        await pilot.press("e")  # the engine's own log
        await pilot.pause()
        assert "new generation" in screen_text(app)
        await pilot.press("e")

        await pilot.press("t")  # the timeline reads the same replica meanwhile
        assert app.screen.id == "timeline"
        await pilot.press("l")
        assert app.screen.id == "live"

        await pilot.press("q")  # stop the engine: final capture and sync, then exit
        await wait_for(pilot, lambda: not app.is_running, timeout=30, what="exit")
    connection.close()
    assert app.return_code == 0
    final = db_status(board)
    assert final.state == "stopped" and final.txid == first + 5
    (info,) = await Replica.open(url).list_generations()
    assert info.last_txid == first + 5  # the final sync published everything captured


async def test_engine_failure_is_shown_as_one_line(tmp_path):
    db_path = tmp_path / "app.db"
    make_database(db_path).close()
    url = (tmp_path / "replica").as_uri()
    # Hold the spool lock, as a running daemon does: the in-process engine must refuse.
    spool = tmp_path / ".app.db-litetool"
    spool.mkdir()
    fd = os.open(spool / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        board = StatusBoard(version="test")
        app = LitetoolApp(
            TuiOptions(board=board, engine_settings=engine_settings(db_path, url, "0s"))
        )
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine_error is not None, what="the failure")
            text = screen_text(app)
            assert "engine stopped: error: " in text and "already being replicated" in text
            assert "Traceback" not in text
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, what="exit")
        assert app.return_code == 1
    finally:
        os.close(fd)


async def test_attached_daemon_status_and_its_replicas(tmp_path):
    board = StatusBoard(version="9.9")
    url = (tmp_path / "replica").as_uri()
    board.update_database("/srv/app.db", state="replicating", generation="01a2", txid=42)
    board.update_replica(
        "/srv/app.db", "s3", url=url, state="backoff", generation="01a2", published_txid=40
    )
    board.update_replica("/srv/app.db", "s3", last_error="error: store unreachable", sync_errors=3)
    board.publish("synced", "/srv/app.db", "txids 1..40 to s3", replica="s3")
    port = free_port()
    server = MetricsServer(board, f"127.0.0.1:{port}")
    await server.start()
    try:
        app = LitetoolApp(TuiOptions(attach_addr=f"127.0.0.1:{port}", replicas_from_status=True))
        async with app.run_test(size=SIZE) as pilot:
            live = app.screen
            replicas = live.query_one("#replicas", DataTable)
            await wait_for(pilot, lambda: replicas.row_count == 1, what="the first poll")
            assert cell(replicas, "/srv/app.db\0s3", "state") == "backoff"
            assert cell(replicas, "/srv/app.db\0s3", "lag") == "2"
            assert cell(replicas, "/srv/app.db\0s3", "errors") == "3"
            text = screen_text(app)
            assert "attached to 127.0.0.1:" in text and "error: store unreachable" in text
            # the daemon's /status?events_since=N feeds the event log
            assert "txids 1..40 to s3" in text
            board.update_database("/srv/app.db", txid=45)
            await wait_for(pilot, lambda: cell(replicas, "/srv/app.db\0s3", "lag") == "5")
            # without a config, the timeline browses the replicas the daemon reports
            assert [t.url for t in app.timeline_screen.targets] == [url]
    finally:
        await server.stop()


async def test_unreachable_daemon_is_reported_and_retried(tmp_path):
    port = free_port()
    app = LitetoolApp(TuiOptions(attach_addr=f"127.0.0.1:{port}"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "cannot reach the daemon" in screen_text(app))
        assert f"127.0.0.1:{port}" in screen_text(app) and "(retrying)" in screen_text(app)
        board = StatusBoard(version="9.9")
        board.update_database("/srv/app.db", state="replicating", txid=7)
        server = MetricsServer(board, f"127.0.0.1:{port}")
        await server.start()
        try:
            databases = app.screen.query_one("#databases", DataTable)
            await wait_for(pilot, lambda: databases.row_count == 1, what="recovery")
            assert "cannot reach" not in screen_text(app)
        finally:
            await server.stop()
