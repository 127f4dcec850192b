"""The live screen fed by an in-process engine, an attached daemon, or an unreachable one."""

from __future__ import annotations

import fcntl
import os
import socket
import time

from replica_builders import make_database
from screen_capture import screen_text, wait_for
from textual.widgets import DataTable

from litetool.config import load_settings
from litetool.engine.metrics import MetricsServer
from litetool.engine.runtime.status import StatusBoard
from litetool.storage import Replica
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.live_screen import LiveScreen

SIZE = (160, 40)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_settings(db_path, url, sync_interval, **replica):
    return load_settings(
        None,
        overrides={
            "databases": [
                {
                    "path": str(db_path),
                    "replicas": [
                        {"url": url, "name": "replica", "sync-interval": sync_interval, **replica}
                    ],
                }
            ]
        },
        use_files=False,
    )


def db_status(board: StatusBoard):
    (status,) = board.databases()
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
                board.databases()
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
    (info,) = await Replica.open(url).index.list_generations()
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
        assert f"127.0.0.1:{port}" in screen_text(app) and "retrying)" in screen_text(app)
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


def column_text(table: DataTable, column: str) -> list[str]:
    return [str(table.get_cell(row.value, column)) for row in table.rows]


async def test_a_daemon_that_stops_answering_is_unknown_until_it_answers_again(tmp_path):
    def daemon_board(txid: int) -> StatusBoard:
        board = StatusBoard(version="9.9")
        now_us = int(time.time() * 1e6)
        board.update_database(
            "/srv/app.db", state="replicating", txid=txid, last_commit_us=now_us - 342_000
        )
        board.update_replica(
            "/srv/app.db",
            "s3",
            url="s3://b/app",
            state="ok",
            generation="01a2",
            published_txid=txid,
            published_time_us=now_us - 342_000,
            last_sync_us=now_us,
        )
        board.publish("synced", "/srv/app.db", f"txids 1..{txid} to s3", replica="s3")
        return board

    port = free_port()
    addr = f"127.0.0.1:{port}"
    server = MetricsServer(daemon_board(42), addr)
    await server.start()
    app = LitetoolApp(TuiOptions(attach_addr=addr, replicas_from_status=True))
    try:
        async with app.run_test(size=SIZE) as pilot:
            live = app.screen
            databases = live.query_one("#databases", DataTable)
            replicas = live.query_one("#replicas", DataTable)
            await wait_for(pilot, lambda: databases.row_count == 1, what="the first poll")
            assert cell(databases, "/srv/app.db", "state") == "replicating"
            assert "ago)" in cell(databases, "/srv/app.db", "last_commit")

            await server.stop()  # the daemon dies
            await wait_for(
                pilot, lambda: cell(databases, "/srv/app.db", "state") == "unknown", what="unknown"
            )
            text = screen_text(app)
            assert f"error: cannot reach the daemon at {addr}" in text and "retrying)" in text
            assert f"attached to {addr} · not answering" in text
            assert "Databases (last read " in text and "Replicas (last read " in text
            # what it said last stays, but nothing that would freeze: no ages, no lags
            assert cell(databases, "/srv/app.db", "txid") == "42"
            assert "ago" not in cell(databases, "/srv/app.db", "last_commit")
            assert column_text(replicas, "state") == ["unknown"]
            assert column_text(replicas, "lag") == ["?"] and column_text(replicas, "lag_time") == [
                "?"
            ]
            assert "ago" not in cell(replicas, "/srv/app.db\0s3", "last_sync")
            await pilot.pause(1.2)  # still unknown while it does not answer
            assert cell(databases, "/srv/app.db", "state") == "unknown"

            # it is restarted (events numbered from 1 again): live again, new events shown
            server = MetricsServer(daemon_board(50), addr)
            await server.start()
            await wait_for(
                pilot,
                lambda: cell(databases, "/srv/app.db", "state") == "replicating",
                what="recovery",
            )
            await wait_for(pilot, lambda: "txids 1..50 to s3" in screen_text(app), what="events")
            text = screen_text(app)
            assert "cannot reach" not in text and "last read" not in text
            assert "not answering" not in text and "the daemon restarted at" in text
            assert cell(databases, "/srv/app.db", "txid") == "50"
            assert column_text(replicas, "state") == ["ok"]
    finally:
        await server.stop()


async def test_an_engine_that_cannot_start_says_why_on_screen_and_on_exit(tmp_path):
    missing = tmp_path / "missing.db"
    url = (tmp_path / "replica").as_uri()
    app = LitetoolApp(
        TuiOptions(
            board=StatusBoard(version="test"), engine_settings=engine_settings(missing, url, "1s")
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.engine_error is not None, what="the failure")
        databases = app.screen.query_one("#databases", DataTable)
        # not `starting` forever: stopped, and the board's next readings do not change it
        await wait_for(pilot, lambda: column_text(databases, "state") == ["stopped"])
        await pilot.pause(1.1)
        assert column_text(databases, "state") == ["stopped"]
        text = screen_text(app)
        assert "engine stopped: error: database not found: " in text
        assert "nothing is replicated" in text
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 1
    assert app.exit_message == app.engine_error
    assert app.exit_message.startswith(f"error: database not found: {missing}")


async def test_quitting_with_transactions_no_replica_has_exits_3_and_says_so(tmp_path):
    db_path = tmp_path / "app.db"
    connection = make_database(db_path)
    board = StatusBoard(version="test")
    # A store that never answers (nothing listens on 127.0.0.1:1): never reachable.
    never = {
        "endpoint": "http://127.0.0.1:1",
        "region": "us-east-1",
        "access-key-id": "key",
        "secret-access-key": "secret",
        "max-retries": 0,
    }
    settings = engine_settings(db_path, "s3://bucket/replica", "0s", **never)
    app = LitetoolApp(TuiOptions(board=board, engine_settings=settings))
    async with app.run_test(size=(80, 24)) as pilot:
        replicas = app.screen.query_one("#replicas", DataTable)
        await wait_for(pilot, lambda: column_text(replicas, "state") == ["backoff"])
        connection.execute("INSERT INTO t(n) VALUES (1)")
        await wait_for(pilot, lambda: db_status(board).txid >= 1, what="capture")
        # it has published nothing: the whole history is behind, not "20794d04h"
        await wait_for(pilot, lambda: column_text(replicas, "lag_time") == ["all"])
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, timeout=30, what="exit")
    connection.close()
    assert app.return_code == 3  # as `litetool daemon` exits
    assert app.exit_message.startswith("error: stopped with 1 committed transaction that ")
    assert "reached no replica" in app.exit_message
