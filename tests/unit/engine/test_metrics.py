"""The metrics server: Prometheus text, /status with events, /healthz."""

import asyncio
import json
import urllib.request

from litetool.engine.metrics import MetricsServer, render_metrics
from litetool.engine.runtime.status import StatusBoard


def board():
    b = StatusBoard(version="test")
    b.update_database("/db/app.db", txid=42, last_commit_us=10_000_000, wal_size_bytes=4096,
                      writers_held_seconds_total=0.25, backpressure=True,
                      braked_seconds_total=1.5)
    b.update_replica("/db/app.db", "s3", url="s3://b/p", generation="g", published_txid=40,
                     published_time_us=7_500_000, requests={"put": 3})
    b.publish("synced", "/db/app.db", "txids 1..40", replica="s3")
    return b


def test_render_metrics_computes_lag_at_scrape_time():
    text = render_metrics(board())
    assert 'litetool_txid{db="/db/app.db"} 42' in text
    assert 'litetool_replica_lag_transactions{db="/db/app.db",replica="s3"} 2' in text
    assert 'litetool_replica_lag_seconds{db="/db/app.db",replica="s3"} 2.5' in text
    assert 'litetool_replica_requests_total{db="/db/app.db",replica="s3",kind="put"} 3' in text
    assert "# TYPE litetool_wal_bytes_total counter" in text
    assert 'litetool_writers_held_seconds_total{db="/db/app.db"} 0.25' in text
    assert 'litetool_backpressure{db="/db/app.db"} 1' in text
    assert 'litetool_braked_seconds_total{db="/db/app.db"} 1.5' in text


def test_status_and_metrics_report_the_same_lag():
    """One definition of lag: /status (and so ``litetool status --json`` and
    the text ``status``) says what /metrics says, as of the reading."""
    b = board()
    replica = b.as_dict()["databases"][0]["replicas"][0]
    assert (replica["lag_transactions"], replica["lag_seconds"]) == (2, 2.5)
    b.update_database("/db/app.db", txid=45, last_commit_us=11_000_000)
    replica = b.as_dict()["databases"][0]["replicas"][0]
    assert (replica["lag_transactions"], replica["lag_seconds"]) == (5, 3.5)
    assert 'litetool_replica_lag_transactions{db="/db/app.db",replica="s3"} 5' in render_metrics(b)


def test_server_endpoints():
    async def scenario():
        server = MetricsServer(board(), "127.0.0.1:0")
        await server.start()
        base = f"http://127.0.0.1:{server.port}"

        def get(path):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return response.status, response.read()

        try:
            status, body = await asyncio.to_thread(get, "/status?events_since=0")
            data = json.loads(body)
            assert status == 200 and data["databases"][0]["txid"] == 42
            assert [e["kind"] for e in data["events"]] == ["synced"]
            assert (await asyncio.to_thread(get, "/healthz"))[1] == b"ok\n"
            assert b"litetool_up" in (await asyncio.to_thread(get, "/metrics"))[1]
        finally:
            await server.stop()

    asyncio.run(scenario())
