"""The timeline on a real replica written by the engine: browse, navigate, pick a point."""

from __future__ import annotations

from screen_capture import screen_text, wait_for
from textual.widgets import Input

from litetool.storage import Replica
from litetool.timespec import format_instant_us
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.timeline_screen import TimelineScreen

SIZE = (120, 40)


def browse(url: str, db_path=None) -> LitetoolApp:
    target = ReplicaTarget("replica", url, (url,), database=str(db_path) if db_path else None)
    return LitetoolApp(TuiOptions(replicas=(target,)))


async def go_to(pilot, text: str) -> None:
    """``g``, type *text* (set at once: one key press per character is slow), ``enter``."""
    await pilot.press("g")
    goto = pilot.app.screen.query_one("#goto", Input)
    assert goto.has_focus
    goto.value = text
    await pilot.press("enter")


async def loaded(pilot) -> TimelineScreen:
    timeline = pilot.app.timeline_screen
    await wait_for(pilot, lambda: timeline.points is not None, what="restore points")
    return timeline


async def test_browse_generations_and_walk_the_restore_points(engine_replica):
    replica = Replica.open(engine_replica.url)
    (info,) = await replica.list_generations()
    # one snapshot with no rows, then one restore point per committed row
    assert info.last_txid - info.first_txid == engine_replica.rows

    app = browse(engine_replica.url, engine_replica.db_path)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        text = screen_text(app)
        assert info.generation in text and "first run" in text
        assert f"{info.first_txid}..{info.last_txid}" in text
        assert timeline.picked_txid == info.last_txid  # the latest point to start with
        assert "l Live" not in text  # read-only browsing: no live screen

        await pilot.press("enter")  # generation -> its restore points
        assert app.focused.id == "points"
        await pilot.press("up", "up", "up")
        assert timeline.picked_txid == info.last_txid - 3
        assert f"Restore point txid {info.last_txid - 3} " in screen_text(app)

        await pilot.press("ctrl+home")
        assert timeline.picked_txid == info.first_txid
        assert "snapshot" in screen_text(app)

        # left/right jump between the histogram's time slices, as the model says
        histogram = timeline.query_one("#histogram")
        visited = [timeline.picked_txid]
        while timeline.picked_txid < info.last_txid:
            expected = timeline.points.step_bucket(timeline.picked_txid, 1, histogram.buckets)
            await pilot.press("right")
            assert timeline.picked_txid == expected > visited[-1]
            visited.append(expected)
        # the pause after `pause_after` rows is one jump: no stop inside it
        second_burst = info.first_txid + engine_replica.pause_after + 1
        assert second_burst in visited
        assert len(visited) <= len(timeline.points)
        await pilot.press("left")
        assert timeline.picked_txid < info.last_txid
        assert "▲" in screen_text(app)

        # go to a txid, then to a time (the latest commit at or before it)
        await go_to(pilot, f"#{info.first_txid + 5}")
        assert timeline.picked_txid == info.first_txid + 5
        target_txid = info.first_txid + 7
        instant = format_instant_us(timeline.points.point(target_txid).time_us)
        await go_to(pilot, instant)
        assert timeline.picked_txid == target_txid
        assert app.focused.id == "points"

        await go_to(pilot, "1999-01-01T00:00Z")
        assert "nothing committed at or before" in screen_text(app)
        await pilot.press("escape")
        assert app.focused.id == "points" and timeline.picked_txid == target_txid


async def test_the_table_window_slides_with_the_cursor(engine_replica, monkeypatch):
    monkeypatch.setattr(TimelineScreen, "WINDOW_ROWS", 6)
    app = browse(engine_replica.url)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        points = timeline.points
        table = timeline.query_one("#points")
        assert table.row_count == 6 and timeline.window == (points.last_txid - 5, points.last_txid)
        await pilot.press("enter")
        for _ in range(6):
            await pilot.press("up")
        # the cursor reached the top row, so the window slid up (and stays 6 rows)
        assert timeline.picked_txid == points.last_txid - 6
        assert timeline.window[0] < points.last_txid - 6 < timeline.window[1]
        assert table.row_count == 6

        await go_to(pilot, f"#{points.first_txid}")
        assert timeline.window == (points.first_txid, points.first_txid + 5)
        await pilot.press("ctrl+end")  # the window's last row: the window slides past it
        assert timeline.picked_txid == points.first_txid + 5
        assert timeline.window[0] < points.first_txid + 5 < timeline.window[1]
        await pilot.press("down")
        assert timeline.picked_txid == points.first_txid + 6
        assert table.row_count == 6


async def test_a_missing_replica_is_one_line(tmp_path):
    app = browse((tmp_path / "nothing-here").as_uri())
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.timeline_screen
        await wait_for(pilot, lambda: "error:" in screen_text(app))
        text = screen_text(app)
        assert "replica replica: error: " in text and "no litetool replica at" in text
        assert "Traceback" not in text
        assert timeline.points is None


async def test_next_replica_switches_what_is_browsed(engine_replica, tmp_path):
    other = (tmp_path / "empty").as_uri()
    targets = (
        ReplicaTarget("first", engine_replica.url, (engine_replica.url,)),
        ReplicaTarget("second", other, (other,)),
    )
    app = LitetoolApp(TuiOptions(replicas=targets))
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        assert "(1/2, r: next)" in screen_text(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "second" in screen_text(app) and timeline.points is None)
        await wait_for(pilot, lambda: "no litetool replica" in screen_text(app))
        await pilot.press("r")
        await wait_for(pilot, lambda: timeline.points is not None)
        assert timeline.target.name == "first"
