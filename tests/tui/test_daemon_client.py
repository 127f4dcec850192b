"""Reading a daemon's /status: decoding, a real metrics server, failures as one line."""

import asyncio
import dataclasses
import json
import socket

import pytest

from litetool.engine.metrics import MetricsServer
from litetool.engine.runtime.status import StatusBoard
from litetool.errors import ConfigError
from litetool.tui.daemon_client import (
    DaemonUnreachable,
    daemon_answers,
    decode_status,
    fetch_status,
    parse_attach_addr,
    status_url,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_board() -> StatusBoard:
    board = StatusBoard(version="9.9")
    board.update_database("/srv/app.db", state="replicating", generation="01a2", txid=42)
    board.update_replica("/srv/app.db", "s3", url="s3://bucket/app", state="ok", published_txid=40)
    board.publish("synced", "/srv/app.db", "txids 39..40 to s3", replica="s3", last_txid=40)
    return board


def test_decode_round_trips_the_boards_json():
    board = sample_board()
    data = json.loads(json.dumps(board.as_dict()))
    data["databases"][0]["a_field_from_the_future"] = 1
    view = decode_status(data)
    assert view.databases == board.databases()
    assert view.version == "9.9" and view.events is None
    events = [dataclasses.asdict(e) for e in board.events_since(0)]
    view = decode_status({**data, "events": events})
    assert view.events == tuple(board.events_since(0))


def test_decode_refuses_what_is_not_status():
    with pytest.raises(DaemonUnreachable, match="not litetool status"):
        decode_status({"hello": 1})
    with pytest.raises(DaemonUnreachable):
        decode_status({"databases": [{"no_path": 1}]})


def test_attach_addresses():
    assert parse_attach_addr("127.0.0.1:9090") == ("127.0.0.1", 9090)
    assert parse_attach_addr("[::1]:9090") == ("::1", 9090)
    assert status_url("[::1]:9090", 7) == "http://[::1]:9090/status?events_since=7"
    for bad in ("9090", ":9090", "host:", "host:99999", "host:http"):
        with pytest.raises(ConfigError, match="--attach"):
            parse_attach_addr(bad)


async def test_fetch_from_a_real_metrics_server():
    board = sample_board()
    port = free_port()
    server = MetricsServer(board, f"127.0.0.1:{port}")
    await server.start()
    try:
        view = await asyncio.to_thread(fetch_status, f"127.0.0.1:{port}", events_since=0)
        assert view.databases == board.databases()
        assert await asyncio.to_thread(daemon_answers, f"127.0.0.1:{port}")
    finally:
        await server.stop()


def test_unreachable_daemon_is_one_line():
    port = free_port()
    with pytest.raises(DaemonUnreachable) as info:
        fetch_status(f"127.0.0.1:{port}", timeout_seconds=1)
    assert info.value.render().startswith(f"error: cannot reach the daemon at 127.0.0.1:{port}")
    assert "\n" not in info.value.render()
    assert not daemon_answers(f"127.0.0.1:{port}")
