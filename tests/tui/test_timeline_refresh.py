"""The timeline refreshes by itself while a live engine publishes, throttled, and a
refresh costs only what was written since."""

from __future__ import annotations

import time

from replica_builders import long_generation, make_database, write_records
from screen_capture import wait_for
from test_live_screen import engine_settings, free_port

from litetool.engine.metrics import MetricsServer
from litetool.engine.runtime.status import StatusBoard
from litetool.storage import Replica
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.replica_index import CachedIndex
from litetool.tui.timeline_screen import TimelineScreen


def db_txid(board: StatusBoard) -> int:
    (status,) = board.databases()
    return status.txid


async def test_the_timeline_follows_a_live_engine_without_ctrl_r(tmp_path, monkeypatch):
    monkeypatch.setattr(TimelineScreen, "REFRESH_SECONDS", 1.0)
    db_path = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    connection = make_database(db_path)
    board = StatusBoard(version="test")
    target = ReplicaTarget("replica", url, (url,), database=str(db_path))
    app = LitetoolApp(
        TuiOptions(
            replicas=(target,), board=board, engine_settings=engine_settings(db_path, url, "0s")
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        timeline = app.timeline_screen
        await wait_for(
            pilot, lambda: timeline.browser.points is not None, what="the first snapshot"
        )

        # new commits appear by themselves, and the picked point follows the latest
        for n in range(5):
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
        await wait_for(pilot, lambda: db_txid(board) == timeline.browser.points.first_txid + 5)
        await wait_for(
            pilot,
            lambda: timeline.browser.points.last_txid == db_txid(board),
            timeout=10,
            what="the refresh",
        )
        assert timeline.browser.picked_txid == timeline.browser.points.last_txid
        table = timeline.query_one("#points")
        assert table.row_count == len(timeline.browser.points)

        # a point picked further back stays picked while more arrive
        await pilot.press("enter", "up", "up")
        picked = timeline.browser.points.last_txid - 2
        await wait_for(pilot, lambda: timeline.browser.picked_txid == picked, what="two rows up")
        refreshes = timeline.refreshes
        started = time.monotonic()
        for n in range(30):  # 3 s of commits, each published at once (sync interval 0s)
            connection.execute("INSERT INTO t(n) VALUES (?)", (n,))
            await pilot.pause(0.1)
        await wait_for(
            pilot,
            lambda: timeline.browser.points.last_txid == db_txid(board) == picked + 32,
            timeout=10,
            what="the refresh",
        )
        elapsed = time.monotonic() - started
        assert timeline.browser.picked_txid == picked and app.focused.id == "points"
        assert table.row_count == len(timeline.browser.points)
        # throttled: at most one refresh per REFRESH_SECONDS, not one per publication
        assert 1 <= timeline.refreshes - refreshes <= elapsed / 1.0 + 1
        # and each refresh fetched only the records written since the one before
        cached = timeline._cached_indexes["replica"]
        records = list((tmp_path / "replica").glob("generations/*/index/*"))
        assert cached.fetched_records <= len(records)

        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, timeout=30, what="exit")
    connection.close()


async def test_a_refresh_fetches_only_the_records_written_since(tmp_path):
    url = (tmp_path / "replica").as_uri()
    generation, records, payloads = long_generation(segments=40, per_segment=10)
    await write_records(url, records[:30], payloads[:29])
    cached = CachedIndex(Replica.open(url))
    (info,) = await cached.list_generations()
    assert info.last_txid == 290 and cached.fetched_records == 30
    assert cached.latest_index(generation).last_txid == 290

    await write_records(url, records[30:], payloads[29:])
    (info,) = await cached.list_generations()
    assert info.last_txid == 400 and cached.fetched_records == 41  # the 11 new ones
    index = await cached.load_generation(generation)
    assert index.last_txid == 400 and cached.fetched_records == 41
    # the same as reading it from scratch
    assert index.segments == (await Replica.open(url).index.load_generation(generation)).segments


async def test_the_timeline_follows_an_attached_daemon(tmp_path, monkeypatch):
    monkeypatch.setattr(TimelineScreen, "REFRESH_SECONDS", 0.5)
    url = (tmp_path / "replica").as_uri()
    generation, records, payloads = long_generation(segments=40, per_segment=10)
    await write_records(url, records[:21], payloads[:20])  # txids 0..200
    board = StatusBoard(version="9.9")
    board.update_database("/srv/app.db", state="replicating", generation=generation, txid=200)
    board.update_replica(
        "/srv/app.db", "s3", url=url, state="ok", generation=generation, published_txid=200
    )
    port = free_port()
    server = MetricsServer(board, f"127.0.0.1:{port}")
    await server.start()
    try:
        app = LitetoolApp(TuiOptions(attach_addr=f"127.0.0.1:{port}", replicas_from_status=True))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("t")
            timeline = app.timeline_screen
            await wait_for(pilot, lambda: timeline.browser.points is not None, what="the replica")
            assert timeline.browser.points.last_txid == 200
            await pilot.pause(1.0)
            assert timeline.browser.points.last_txid == 200  # nothing new: nothing moves

            # the daemon publishes 200 more transactions
            await write_records(url, records[21:], payloads[20:])
            board.update_replica("/srv/app.db", "s3", published_txid=400)
            await wait_for(
                pilot, lambda: timeline.browser.points.last_txid == 400, what="the refresh"
            )
            assert timeline.browser.picked_txid == 400  # it was on the latest point: it follows
    finally:
        await server.stop()
