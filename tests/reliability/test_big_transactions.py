"""One huge transaction (a VACUUM, a bulk load): replicated, and forgotten after.

A segment is built in memory; so a transaction of tens of MiB costs litetool
that much while it goes up, but not for the rest of the process's life: its
RSS comes back to where it was (the soak found 51 MB kept after the VACUUMs
of a growing database). A transaction larger than one segment may hold
(``MAX_SEGMENT_PAYLOAD_BYTES``) goes up as a snapshot: the replica starts a
new generation, says why, and the restore still equals the live database.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

from app_harness import App, Litetool, assert_restores_live, content, daemon_settings

from litetool.engine.daemon import run_daemon
from litetool.engine.runtime.status import StatusBoard
from litetool.engine.sync import segment_build
from litetool.eventlog import make_log
from litetool.storage import Replica

# RSS may stay this much above its level before the big transaction.
RSS_SLACK_BYTES = 24 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_rss_comes_back_after_a_big_transaction(tmp_path, figures):
    db = tmp_path / "app.db"
    app = App(db)
    lt = Litetool(db, (tmp_path / "replica").as_uri(), tmp_path / "litetool.log")
    try:
        app.steps("open; create; insert 2000")
        lt.start()
        app.steps("commits 50")
        lt.wait_caught_up()
        assert lt.proc is not None
        before = rss_bytes(lt.proc.pid)
        txid = lt.status()["databases"][0]["txid"]
        # About 64 MiB of WAL in one transaction (rows of 40..600 bytes).
        app.steps("insert 160000")
        wal = db.with_name("app.db-wal").stat().st_size
        peak = before
        deadline = time.monotonic() + 120
        while True:  # until the big transaction is published
            peak = max(peak, rss_bytes(lt.proc.pid))
            db_status = lt.status()["databases"][0]
            published = [r["published_txid"] for r in db_status["replicas"]]
            if published and published[0] == db_status["txid"] > txid:
                break
            assert time.monotonic() < deadline, lt.tail()
            time.sleep(0.05)
        app.steps("commits 50")
        lt.wait_caught_up()
        time.sleep(0.5)
        after = rss_bytes(lt.proc.pid)
        figures.set("transaction_mib", round(wal / 2**20, 1))
        figures.set("rss_before_mb", round(before / 2**20, 1))
        figures.set("rss_peak_mb", round(peak / 2**20, 1))
        figures.set("rss_after_mb", round(after / 2**20, 1))
        assert after - before <= RSS_SLACK_BYTES, (before >> 20, peak >> 20, after >> 20)
        assert lt.stop() == 0, lt.tail()
        assert_restores_live((tmp_path / "replica").as_uri(), db, tmp_path / "restored.db")
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        app.quit()


async def test_a_transaction_larger_than_a_segment_goes_up_as_a_snapshot(
    tmp_path, monkeypatch, figures
):
    monkeypatch.setattr(segment_build, "MAX_SEGMENT_PAYLOAD_BYTES", 1 << 20)
    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    settings = daemon_settings(db, url)
    app = App(db)
    stream = io.StringIO()
    stop = asyncio.Event()
    board = StatusBoard(version="test")
    try:
        app.steps("open; create; insert 200")
        daemon = asyncio.create_task(
            run_daemon(
                settings, log=make_log("debug", "json", stream=stream), board=board, stop=stop
            )
        )

        async def caught_up(at_least: int) -> int:
            deadline = time.monotonic() + 30
            while True:
                db_status = board.databases()[0]
                ok = [r.published_txid for r in db_status.replicas if r.state == "ok"]
                if ok and ok[0] == db_status.txid >= at_least:
                    return db_status.txid
                assert time.monotonic() < deadline, stream.getvalue()[-3000:]
                await asyncio.sleep(0.05)

        await asyncio.to_thread(app.steps, "commits 20")
        before = await caught_up(0)
        await asyncio.to_thread(app.steps, "insert 8000")  # about 3 MiB in one transaction
        await asyncio.to_thread(app.steps, "commits 20")
        await caught_up(before + 21)
        stop.set()
        assert await asyncio.wait_for(daemon, timeout=60) == 0
    finally:
        stop.set()
        app.quit()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    too_large = [e for e in events if e["event"] == "transaction too large for a segment"]
    assert too_large, [e["event"] for e in events]
    assert "more than one segment may (1 MiB)" in too_large[0]["error"]
    generations = await Replica.open(url).index.list_generations()
    reasons = [g.reason for g in generations]
    assert any(r and "more than one segment may" in r for r in reasons), reasons
    figures.set("generations", len(generations))
    assert_restores_live(url, db, tmp_path / "restored.db")
    assert content(tmp_path / "restored.db") == content(db)
