"""An exception at any await point of a replica's sync loop never stops replication.

The daemon runs in this process against a real local replica; a fault
injector in front of the replica (it passes every call through to the real
store, except that the first call of one method raises an exception nobody
expects, a ``RuntimeError``) or in the engine raises once. Replication must
log the failure with its traceback, count it, go on, and end with a restore
equal to the live database, with exit status 0.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest
from app_harness import App, assert_restores_live, daemon_settings

from litetool.engine import replication
from litetool.engine.daemon import run_daemon
from litetool.engine.runtime.status import StatusBoard
from litetool.engine.sync import segment_build
from litetool.eventlog import make_log
from litetool.storage import Replica

REPLICA_CALLS = [
    "ensure_format",
    "acquire_lease",
    "load_tip",
    "put_snapshot",
    "put_object",
    "renew_lease_if_needed",
    "publish_record",
]


class FaultyReplica:
    """Passes every call to the real replica; the first call of ``method`` raises."""

    def __init__(self, real: Replica, method: str) -> None:
        self._real = real
        self._method = method
        self.raised = 0

    def __getattr__(self, name: str):
        attribute = getattr(self._real, name)
        if name != self._method or self.raised:
            return attribute

        async def fail(*args, **kwargs):
            self.raised += 1
            raise RuntimeError(f"injected fault in {name}")

        return fail


def caught_up(board: StatusBoard) -> bool:
    """A failure was counted, and the replica holds every captured transaction."""
    db = board.databases()[0]
    return db.task_failures >= 1 and all(r.published_txid == db.txid for r in db.replicas)


def steady(seconds: float):
    """Capture has seen the last commit: the txid has not moved for ``seconds``."""
    seen: list[tuple[int, float]] = []

    def done(board: StatusBoard) -> bool:
        txid, now = board.databases()[0].txid, time.monotonic()
        if not seen or seen[-1][0] != txid:
            seen.append((txid, now))
        return now - seen[-1][1] >= seconds

    return done


async def replicate_while_writing(
    tmp_path: Path, app: App, settled=caught_up
) -> tuple[int, list[dict], StatusBoard]:
    """Write 4 rounds of 40 commits while the daemon runs; stop it once
    ``settled(board)`` holds (at most 30 s later)."""
    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    settings = daemon_settings(db, url, **{"snapshot-interval": "2s"})
    stream = io.StringIO()
    board = StatusBoard(version="test")
    stop = asyncio.Event()
    daemon = asyncio.create_task(
        run_daemon(settings, log=make_log("debug", "json", stream=stream), board=board, stop=stop)
    )
    for _ in range(4):
        await asyncio.to_thread(app.steps, "commits 40")
        await asyncio.sleep(0.2)
    # The failure's 1 s backoff and the retry after it take a moment.
    deadline = asyncio.get_running_loop().time() + 30
    while not settled(board) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    code = await asyncio.wait_for(daemon, timeout=60)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    return code, events, board


@pytest.mark.parametrize("method", REPLICA_CALLS)
async def test_a_replica_call_that_raises_is_reported_and_retried(tmp_path, monkeypatch, method):
    faulty: list[FaultyReplica] = []
    real_open = Replica.open

    def open_faulty(*args, **kwargs):
        replica = FaultyReplica(real_open(*args, **kwargs), method)
        faulty.append(replica)
        return replica

    monkeypatch.setattr(replication.Replica, "open", staticmethod(open_faulty))
    db = tmp_path / "app.db"
    app = App(db)
    try:
        app.steps("open; create; insert 500")
        code, events, board = await replicate_while_writing(tmp_path, app)
        assert faulty and faulty[0].raised == 1, f"{method} was never called"
        assert code == 0, events[-5:]
        failures = [e for e in events if e["event"] == "task failed"]
        assert failures, [e["event"] for e in events]
        assert f"injected fault in {method}" in failures[0]["traceback"]
        assert board.databases()[0].task_failures >= 1
        assert_restores_live((tmp_path / "replica").as_uri(), db, tmp_path / "restored.db")
    finally:
        app.quit()


@pytest.mark.parametrize("where", ["take_snapshot", "build_segment"])
async def test_an_engine_step_that_raises_is_reported_and_retried(tmp_path, monkeypatch, where):
    raised = []
    if where == "take_snapshot":
        real = replication.DatabaseReplication.take_snapshot

        async def take_snapshot(self):
            if not raised:
                raised.append(1)
                raise RuntimeError("injected fault in take_snapshot")
            return await real(self)

        monkeypatch.setattr(replication.DatabaseReplication, "take_snapshot", take_snapshot)
    else:
        real_build = segment_build.SegmentBuilder.build_after

        def build_after(self, txid, through_txid):
            if not raised:
                raised.append(1)
                raise RuntimeError("injected fault in build_segment")
            return real_build(self, txid, through_txid)

        monkeypatch.setattr(segment_build.SegmentBuilder, "build_after", build_after)
    db = tmp_path / "app.db"
    app = App(db)
    try:
        app.steps("open; create; insert 500")
        code, events, _board = await replicate_while_writing(tmp_path, app)
        assert raised, f"{where} was never reached"
        assert code == 0
        failures = [e for e in events if e["event"] == "task failed"]
        assert failures and f"injected fault in {where}" in failures[0]["traceback"]
        assert_restores_live((tmp_path / "replica").as_uri(), db, tmp_path / "restored.db")
    finally:
        app.quit()


async def test_stopping_with_transactions_on_no_replica_exits_non_zero(tmp_path, monkeypatch):
    """Every publish fails: at stop, the log says how many reached no replica."""

    class Unreachable(FaultyReplica):
        def __getattr__(self, name: str):
            attribute = getattr(self._real, name)
            if name != "publish_record":
                return attribute

            async def fail(*args, **kwargs):
                from litetool.errors import StorageUnavailable

                raise StorageUnavailable("the store cannot be reached (injected)")

            return fail

    real_open = Replica.open
    monkeypatch.setattr(
        replication.Replica,
        "open",
        staticmethod(lambda *a, **k: Unreachable(real_open(*a, **k), "publish_record")),
    )
    db = tmp_path / "app.db"
    app = App(db)
    try:
        app.steps("open; create; insert 100")
        code, events, board = await replicate_while_writing(tmp_path, app, steady(1.0))
        assert code == 3
        stopped = [e for e in events if e["event"] == "stopped with unreplicated transactions"]
        # No replica holds even the snapshot: every captured transaction counts
        # (the first commits may be in the generation's base image).
        assert stopped and stopped[0]["count"] == stopped[0]["txid"] >= 100, stopped
        assert board.databases()[0].unreplicated == stopped[0]["count"]
    finally:
        app.quit()
