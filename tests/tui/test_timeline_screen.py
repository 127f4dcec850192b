"""The timeline on real replicas: browse, navigate, pick a point, and fetch only the
segments the rows on screen need (index records are format 2: summaries only)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from replica_builders import (
    BASE_TIME_US,
    long_generation,
    long_generation_times,
    write_long_replica,
)
from screen_capture import screen_text, wait_for
from textual.widgets import Input

from litetool.restore import RestoreTarget, load_candidates, plan_fetching
from litetool.storage import Replica, object_key
from litetool.timespec import format_instant_us
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.display import format_bytes, format_time_us
from litetool.tui.restore_point_browser import RestorePointBrowser
from litetool.tui.timeline_screen import TimelineScreen
from litetool.tui.timeline_tables import PENDING

SIZE = (120, 40)


def browse(url: str, db_path=None) -> LitetoolApp:
    target = ReplicaTarget("replica", url, (url,), database=str(db_path) if db_path else None)
    return LitetoolApp(TuiOptions(replicas=(target,)))


async def go_to(pilot, text: str) -> None:
    """``g``, type *text* (set at once: one key press per character is slow), ``enter``."""
    await pilot.press("g")

    def goto_focused() -> bool:
        found = pilot.app.screen.query("#goto")
        return bool(found) and found.first(Input).has_focus

    await wait_for(pilot, goto_focused, what="the go-to field")
    pilot.app.screen.query_one("#goto", Input).value = text
    await pilot.press("enter")


async def loaded(pilot) -> TimelineScreen:
    timeline = pilot.app.timeline_screen
    await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
    return timeline


async def settled(pilot) -> None:
    timeline = pilot.app.timeline_screen
    await wait_for(pilot, lambda: timeline.browser.details_settled, what="segment details")


def txids_on_screen(timeline: TimelineScreen) -> range:
    rows = timeline.query_one("#points").visible_rows()
    first = timeline.browser.window[0]
    return range(first + rows.start, first + rows.stop)


def count_segment_fetches(monkeypatch) -> tuple[list[str], asyncio.Event]:
    """Record the digest of every segment object fetched, in order; fetches wait
    until the returned event is set (set it at once to let them through)."""
    fetched: list[str] = []
    gate = asyncio.Event()
    original = Replica.fetch_segment

    async def fetch_segment(self, digest, **limits):
        fetched.append(digest)
        await gate.wait()
        return await original(self, digest, **limits)

    monkeypatch.setattr(Replica, "fetch_segment", fetch_segment)
    return fetched, gate


async def test_browse_generations_and_walk_the_restore_points(engine_replica):
    replica = Replica.open(engine_replica.url)
    (info,) = await replica.index.list_generations()
    # one snapshot with no rows, then one restore point per committed row
    assert info.last_txid - info.first_txid == engine_replica.rows

    app = browse(engine_replica.url, engine_replica.db_path)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        text = screen_text(app)
        assert info.generation in text and "first run" in text
        assert f"{info.first_txid}..{info.last_txid}" in text
        assert timeline.browser.picked_txid == info.last_txid  # the latest point to start with
        assert "l Live" not in text  # read-only browsing: no live screen

        await pilot.press("enter")  # generation -> its restore points
        await wait_for(pilot, lambda: app.focused.id == "points", what="the points table")
        await pilot.press("up", "up", "up")
        await wait_for(
            pilot, lambda: timeline.browser.picked_txid == info.last_txid - 3, what="3 up"
        )
        assert f"Restore point txid {info.last_txid - 3} " in screen_text(app)

        await pilot.press("ctrl+home")
        await wait_for(
            pilot, lambda: timeline.browser.picked_txid == info.first_txid, what="ctrl+home"
        )
        assert "snapshot" in screen_text(app)

        # left/right jump between the histogram's time slices, as the model says
        histogram = timeline.query_one("#histogram")
        visited = [timeline.browser.picked_txid]
        while timeline.browser.picked_txid < info.last_txid:
            expected = timeline.browser.points.step_bucket(
                timeline.browser.picked_txid, 1, histogram.buckets
            )
            assert expected > visited[-1]
            await pilot.press("right")
            await wait_for(
                pilot, lambda e=expected: timeline.browser.picked_txid == e, what="right"
            )
            visited.append(expected)
        # the pause after `pause_after` rows is one jump: no stop inside it
        second_burst = info.first_txid + engine_replica.pause_after + 1
        assert second_burst in visited
        assert len(visited) <= len(timeline.browser.points)
        await pilot.press("left")
        await wait_for(pilot, lambda: timeline.browser.picked_txid < info.last_txid, what="left")
        assert "▲" in screen_text(app)

        # go to a txid, then to a time (the latest commit at or before it)
        await go_to(pilot, f"#{info.first_txid + 5}")
        assert timeline.browser.picked_txid == info.first_txid + 5
        target_txid = info.first_txid + 7
        index = await replica.fetch_details(await replica.index.load_generation(info.generation))
        instant = format_instant_us(index.commit_time_us(target_txid))
        await go_to(pilot, instant)
        await wait_for(pilot, lambda: timeline.browser.picked_txid == target_txid, what="the jump")
        assert app.focused.id == "points"

        await go_to(pilot, "1999-01-01T00:00Z")
        assert "nothing committed at or before" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.focused.id == "points", what="escape")
        assert timeline.browser.picked_txid == target_txid


async def test_the_table_window_slides_with_the_cursor(engine_replica, monkeypatch):
    monkeypatch.setattr(RestorePointBrowser, "WINDOW_ROWS", 6)
    app = browse(engine_replica.url)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        points = timeline.browser.points
        table = timeline.query_one("#points")
        assert table.row_count == 6 and timeline.browser.window == (
            points.last_txid - 5,
            points.last_txid,
        )
        await pilot.press("enter")
        for _ in range(6):
            await pilot.press("up")
        # the cursor reached the top row, so the window slid up (and stays 6 rows)
        await wait_for(
            pilot, lambda: timeline.browser.picked_txid == points.last_txid - 6, what="six rows up"
        )
        assert timeline.browser.window[0] < points.last_txid - 6 < timeline.browser.window[1]
        assert table.row_count == 6

        await go_to(pilot, f"#{points.first_txid}")
        await wait_for(
            pilot,
            lambda: timeline.browser.window == (points.first_txid, points.first_txid + 5),
            what="the window at the first point",
        )
        await pilot.press("ctrl+end")  # the window's last row: the window slides past it
        await wait_for(
            pilot,
            lambda: (
                timeline.browser.picked_txid == points.first_txid + 5
                and timeline.browser.window[0] < points.first_txid + 5 < timeline.browser.window[1]
            ),
            what="ctrl+end",
        )
        await pilot.press("down")
        await wait_for(
            pilot, lambda: timeline.browser.picked_txid == points.first_txid + 6, what="one down"
        )
        assert table.row_count == 6


async def test_a_missing_replica_is_one_line(tmp_path):
    app = browse((tmp_path / "nothing-here").as_uri())
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.timeline_screen
        await wait_for(pilot, lambda: "error:" in screen_text(app))
        text = screen_text(app)
        assert "replica replica: error: " in text and "no litetool replica at" in text
        assert "Traceback" not in text
        assert timeline.browser.points is None


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
        await wait_for(
            pilot, lambda: "second" in screen_text(app) and timeline.browser.points is None
        )
        await wait_for(pilot, lambda: "no litetool replica" in screen_text(app))
        await pilot.press("r")
        await wait_for(pilot, lambda: timeline.browser.points is not None)
        assert timeline.target.name == "first"


# -- a generation known only by its index records ------------------------------------------


async def test_only_the_segments_on_screen_are_fetched(tmp_path, monkeypatch):
    url = (tmp_path / "long").as_uri()
    await write_long_replica(url, segments=40, per_segment=10)  # txids 0..400
    times = [BASE_TIME_US, *long_generation_times(40, 10)]  # times[txid]
    fetched, gate = count_segment_fetches(monkeypatch)
    app = browse(url)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        points = timeline.browser.points
        assert (points.first_txid, points.last_txid) == (0, 400)
        assert all(segment.detail is None for segment in points.segments)
        table = timeline.query_one("#points")
        assert table.row_count == 401  # the whole generation fits the table's window

        # the rows on screen are pending until their segments arrive; the status says so
        await wait_for(pilot, lambda: fetched, what="a fetch to start")
        await pilot.pause()
        on_screen = txids_on_screen(timeline)
        assert 10 < len(on_screen) < 40 and on_screen[-1] == 400
        needed = {points.segment_for(txid) for txid in on_screen}
        assert len(needed) <= 4
        assert str(table.get_cell(str(on_screen[0] + 1), "time")) == PENDING
        text = screen_text(app)
        first_needed = min(segment.first_txid for segment in needed)
        assert f"fetching {len(needed)} segments (txids {first_needed}..400, " in text

        gate.set()
        await settled(pilot)
        # exactly the segments of the rows on screen, each once
        assert sorted(fetched) == sorted(segment.digest for segment in needed)
        for txid in on_screen:
            assert table.get_cell(str(txid), "time") == format_time_us(times[txid])
            assert str(table.get_cell(str(txid), "db_size")) == format_bytes((txid + 1) * 4096)
        assert f"committed {format_time_us(times[400])} UTC" in screen_text(app)
        assert "fetching" not in screen_text(app)
        # everything else is still known only by its summary
        assert points.point(5).time_us is None and points.point(205).pending

        # moving elsewhere fetches that neighbourhood, and only that
        fetched.clear()
        await go_to(pilot, "#205")
        await settled(pilot)
        on_screen = txids_on_screen(timeline)
        assert 205 in on_screen
        assert sorted(fetched) == sorted({points.segment_for(t).digest for t in on_screen})
        assert not points.point(205).pending
        assert table.get_cell("205", "time") == format_time_us(times[205])
        assert points.point(5).pending
        assert len(points.missing_details(0, 400)) >= 40 - 8


def restore_at_dry_run(url: str, instant: str) -> int:
    """The txid ``litetool restore --dry-run --at INSTANT URL`` plans."""
    result = subprocess.run(
        [sys.executable, "-m", "litetool", "restore", "--dry-run", "--at", instant, url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.strip().startswith("target")]
    return int(line.split("txid ")[1].split(",")[0])


async def test_go_to_a_time_lands_where_restore_at_does(tmp_path, monkeypatch):
    url = (tmp_path / "long").as_uri()
    await write_long_replica(url, segments=40, per_segment=10)
    times = [BASE_TIME_US, *long_generation_times(40, 10)]
    # In segment 20 (txids 191..200) the clock went back: 193 committed at 191.5 s,
    # after 192 at 192 s. At 191.7 s, restore --at lands on 191 (192 is later; a
    # restore never includes a transaction after the instant), not on 193.
    backwards = BASE_TIME_US + 191_700_000
    assert times[193] < backwards < times[192]
    instants = [
        backwards,
        BASE_TIME_US + 55_000_000,  # exactly txid 55's commit, inside segment 6
        BASE_TIME_US + 123_400_000,  # between commits inside segment 13
        BASE_TIME_US + 300_500_000,  # between segments 30 and 31: no fetch needed
        BASE_TIME_US + 10**9,  # after the last commit
    ]
    replica = Replica.open(url)
    expected = {}
    for instant in instants:
        candidates = await load_candidates([replica])
        plan, _ = await plan_fetching(candidates, RestoreTarget(time_us=instant), [replica])
        expected[instant] = plan.txid
    assert expected[backwards] == 191
    assert restore_at_dry_run(url, format_instant_us(backwards)) == 191
    assert list(expected.values()) == [191, 55, 123, 300, 400]

    fetched, gate = count_segment_fetches(monkeypatch)
    gate.set()
    monkeypatch.setattr(RestorePointBrowser, "DETAILS_DELAY_SECONDS", 3600.0)  # no row fetches
    app = browse(url)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        segment_20 = timeline.browser.points.segment_for(191)
        assert segment_20.detail is None and not fetched
        for instant in instants:
            await go_to(pilot, format_instant_us(instant))
            await wait_for(
                pilot,
                lambda instant=instant: timeline.browser.picked_txid == expected[instant],
                what=f"the jump to {expected[instant]}",
            )
            assert app.focused.id == "points"
        # only the segments the instants fell inside were fetched (20, 6 and 13)
        assert sorted(fetched) == sorted(
            timeline.browser.points.segment_for(txid).digest for txid in (191, 55, 123)
        )


async def test_a_go_to_that_lands_at_once_supersedes_one_waiting_for_a_segment(
    tmp_path, monkeypatch
):
    url = (tmp_path / "long").as_uri()
    await write_long_replica(url, segments=40, per_segment=10)
    fetched, gate = count_segment_fetches(monkeypatch)  # the gate holds every fetch
    monkeypatch.setattr(RestorePointBrowser, "DETAILS_DELAY_SECONDS", 3600.0)  # no row fetches
    app = browse(url)
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        # a time inside segment 6 waits for that segment ...
        await go_to(pilot, format_instant_us(BASE_TIME_US + 55_000_000))
        await wait_for(pilot, lambda: fetched, what="the fetch of segment 6")
        # ... and a txid lands at once, while it still waits
        await go_to(pilot, "#300")
        await wait_for(pilot, lambda: timeline.browser.picked_txid == 300, what="the jump to 300")
        gate.set()
        await wait_for(
            pilot, lambda: not timeline.browser.points.point(55).pending, what="segment 6"
        )
        await pilot.pause()  # (the go-to it waited for would have been applied with it)
        assert timeline.browser.picked_txid == 300  # the earlier go-to did not jump back to 55


async def test_a_segment_that_cannot_be_fetched_stays_pending_and_says_why(tmp_path):
    directory = tmp_path / "long"
    await write_long_replica(directory.as_uri(), segments=40, per_segment=10)
    _, records, _ = long_generation(40, 10)
    (last_segment,) = records[-1].segments
    (directory / object_key(last_segment.digest)).unlink()
    app = browse(directory.as_uri())
    async with app.run_test(size=SIZE) as pilot:
        timeline = await loaded(pilot)
        await settled(pilot)
        text = screen_text(app)
        assert f"segment {last_segment.digest[:12]} (txids 391..400): error: " in text
        assert "Traceback" not in text
        points = timeline.browser.points
        assert points.point(395).pending and not points.point(385).pending
        assert timeline.query_one("#points").get_cell("395", "time") == PENDING
        # not fetched again and again: moving on the screen leaves it failed
        await pilot.press("enter", "up")
        await settled(pilot)
        assert points.point(395).pending
        # a time inside it cannot be resolved without it: the same error, no jump
        picked = timeline.browser.picked_txid
        await go_to(pilot, format_instant_us(BASE_TIME_US + 395_000_000))
        await settled(pilot)
        assert timeline.browser.picked_txid == picked
        assert f"segment {last_segment.digest[:12]} (txids 391..400): error: " in screen_text(app)
