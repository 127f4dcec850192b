"""The fault proxy itself, in front of a small stdlib HTTP server that records
what reached it (no object store needed)."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time

import pytest
from faultproxy import FaultProxy


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list  # (method, path, headers, body), set per server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers.items()), body))
        reply = b"echo:" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("ETag", '"abc"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream():
    seen: list = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _request(proxy: FaultProxy, method: str, path: str, body: bytes = b"", timeout: float = 5):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers={"X-Amz-Date": "20260101T000000Z"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_passes_requests_through_unchanged_on_one_connection(upstream):
    url, seen = upstream
    with FaultProxy(url) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for i in range(3):  # keep-alive: three requests, one connection
            conn.request("PUT", f"/bucket/k{i}?x=1", body=b"data%d" % i, headers={"X-A": "b"})
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"echo:data%d" % i)
        conn.request("HEAD", "/bucket/k0")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(b"echo:"))  # HEAD keeps it
        assert response.read() == b""
        conn.close()
        counts = proxy.counts
    assert [(m, p, b) for m, p, _, b in seen] == [
        ("PUT", "/bucket/k0?x=1", b"data0"),
        ("PUT", "/bucket/k1?x=1", b"data1"),
        ("PUT", "/bucket/k2?x=1", b"data2"),
        ("HEAD", "/bucket/k0", b""),
    ]
    assert seen[0][2]["X-A"] == "b" and seen[0][2]["Host"] == f"127.0.0.1:{proxy.port}"
    assert (counts.connections, counts.requests, counts.forwarded, counts.faults) == (1, 4, 4, 0)


def test_injected_errors_carry_the_stores_bodies(upstream):
    url, seen = upstream
    with FaultProxy(url) as proxy:
        proxy.set(fail=1.0)
        status, _, body = _request(proxy, "GET", "/b/k")
        assert status == 500 and b"<Code>InternalError</Code>" in body
        proxy.set(throttle=1.0)
        status, _, body = _request(proxy, "PUT", "/b/k", b"x")
        assert status == 503 and b"<Code>SlowDown</Code>" in body
        assert b"Please reduce your request rate." in body
        counts = proxy.counts
    assert seen == []  # neither reached the server
    assert (counts.failed, counts.throttled, counts.faults) == (1, 1, 2)
    with FaultProxy(url, dialect="azure") as proxy:
        proxy.set(throttle=1.0)
        status, headers, body = _request(proxy, "PUT", "/b/k", b"x")
    assert status == 503 and headers["x-ms-error-code"] == "ServerBusy"
    assert b"<Code>ServerBusy</Code>" in body


def test_lost_and_dropped_answers_reached_the_server(upstream):
    url, seen = upstream
    with FaultProxy(url) as proxy:
        proxy.set(lose=1.0)
        status, _, _ = _request(proxy, "PUT", "/b/k", b"payload")
        assert status == 500
        proxy.set(drop=1.0)
        with pytest.raises(TimeoutError):
            _request(proxy, "PUT", "/b/k2", b"second", timeout=0.5)
        counts = proxy.counts
    assert (counts.lost, counts.dropped, counts.faults) == (1, 1, 2)
    assert [(m, b) for m, _, _, b in seen] == [("PUT", b"payload"), ("PUT", b"second")]


def test_fractions_and_methods(upstream):
    url, seen = upstream
    with FaultProxy(url, seed=7) as proxy:
        proxy.set(fail=0.5, methods={"put"})
        statuses = [_request(proxy, "PUT", f"/b/{i}", b"x")[0] for i in range(200)]
        gets = [_request(proxy, "GET", "/b/0")[0] for _ in range(20)]
        counts = proxy.counts
    assert 60 <= statuses.count(500) <= 140, statuses.count(500)
    assert statuses.count(500) == counts.failed
    assert set(gets) == {200}  # GETs are not subject to the faults
    assert len(seen) == 200 - counts.failed + 20
    assert counts.methods == {"PUT": 200, "GET": 20}


def test_spread_faults_come_evenly(upstream):
    url, _ = upstream
    with FaultProxy(url) as proxy:
        proxy.set(fail=0.25, throttle=0.1, spread=True)
        statuses = [_request(proxy, "GET", "/b/k")[0] for _ in range(40)]
        counts = proxy.counts
    assert [i for i, s in enumerate(statuses) if s == 500] == [3, 7, 11, 15, 19, 23, 27, 31, 35, 39]
    # 19 is owed to both: fail goes first, the throttle comes one request later.
    assert [i for i, s in enumerate(statuses) if s == 503] == [9, 20, 29]
    assert (counts.failed, counts.throttled) == (10, 3)


def test_faults_limited_to_some_paths(upstream):
    url, seen = upstream
    with FaultProxy(url) as proxy:
        proxy.set(fail=1.0, methods={"PUT"}, path_contains="/index/")
        assert _request(proxy, "PUT", "/b/gen/index/0001", b"r")[0] == 500
        assert _request(proxy, "PUT", "/b/objects/ab", b"o")[0] == 200
        assert _request(proxy, "GET", "/b/gen/index/0001")[0] == 200
    assert [(m, p) for m, p, _, _ in seen] == [
        ("PUT", "/b/objects/ab"),
        ("GET", "/b/gen/index/0001"),
    ]


def test_latency(upstream):
    url, _ = upstream
    with FaultProxy(url) as proxy:
        proxy.set(latency=0.3)
        started = time.monotonic()
        assert _request(proxy, "GET", "/b/k")[0] == 200
        slow = time.monotonic() - started
        proxy.pass_through()
        started = time.monotonic()
        assert _request(proxy, "GET", "/b/k")[0] == 200
        fast = time.monotonic() - started
        assert proxy.counts.delayed == 1
    assert slow >= 0.3 > fast


def test_hang_never_answers_until_the_client_gives_up(upstream):
    url, seen = upstream
    with FaultProxy(url) as proxy:
        proxy.set(hang=1.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _request(proxy, "GET", "/b/k", timeout=0.5)
        assert time.monotonic() - started >= 0.5
        proxy.pass_through()
        assert _request(proxy, "GET", "/b/k")[0] == 200
        assert proxy.counts.hung == 1
    assert len(seen) == 1


def test_down_refuses_connections_and_up_listens_on_the_same_port(upstream):
    url, _ = upstream
    with FaultProxy(url) as proxy:
        port = proxy.port
        proxy.set(hang=1.0)
        hanging = socket.create_connection(("127.0.0.1", port))
        hanging.sendall(b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while proxy.counts.hung == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.down()
        hanging.settimeout(5)
        assert hanging.recv(10) == b""  # the open connection was dropped
        hanging.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        proxy.pass_through()
        assert proxy.port == port
        assert _request(proxy, "GET", "/b/k")[0] == 200
        assert proxy.counts.outages == 1


def test_upstream_down_is_a_502(upstream):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
        assert _request(proxy, "GET", "/b/k")[0] == 502
        assert proxy.counts.upstream_errors == 1


def test_rejects_a_non_loopback_upstream():
    with pytest.raises(ValueError):
        FaultProxy("http://10.0.0.1:9000")
    with pytest.raises(ValueError):
        FaultProxy("http://127.0.0.1:9000").set(fail=0.7, hang=0.7)
