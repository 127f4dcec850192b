"""Zoom levels of the timeline: + and - change what a histogram column covers, and
← → step by that much."""

from __future__ import annotations

from datetime import UTC, datetime

from replica_builders import BASE_TIME_US, SPREAD_STEP_US, spread_generation, write_records
from screen_capture import screen_text, wait_for

from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.zoom import UNITS, WHOLE, ladder, unit_name

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def utc(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1e6, UTC)


def test_the_levels_offered_are_finer_than_the_whole_generation():
    units = dict(UNITS)
    columns = 78
    assert ladder(10 * 60_000_000, columns) == [WHOLE, units["second"]]  # ten minutes
    assert ladder(5 * DAY_US, columns) == [WHOLE, units["hour"], units["minute"], units["second"]]
    assert ladder(120 * DAY_US, columns)[:2] == [WHOLE, units["day"]]
    assert ladder(30_000_000, columns) == [WHOLE]  # 30 s fits at better than 1 s a column


async def test_zoom_keys_change_the_histogram_and_the_steps(tmp_path):
    url = (tmp_path / "spread").as_uri()
    _, records, payloads = spread_generation(days=120)
    await write_records(url, records, payloads)
    last_txid = records[-1].segments[-1].last_txid
    time_of = {txid: BASE_TIME_US + txid * SPREAD_STEP_US for txid in range(1, last_txid + 1)}
    app = LitetoolApp(TuiOptions(replicas=(ReplicaTarget("replica", url, (url,)),)))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        timeline = app.timeline_screen
        await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
        histogram = timeline.query_one("#histogram")
        units = dict(UNITS)

        async def level_is(level: int) -> None:
            await wait_for(pilot, lambda: histogram.level == level, what=f"level {level}")

        async def shown(text: str) -> None:
            await wait_for(pilot, lambda: text in screen_text(app), what=text)

        async def press_until(key: str, predicate, what: str) -> None:
            await pilot.press(key)
            await wait_for(pilot, predicate, what=what)

        await pilot.press("enter")  # to the restore points: the latest is picked
        await wait_for(pilot, lambda: app.focused.id == "points", what="the restore points")
        await shown("Commits over time: whole generation")
        assert "+- Zoom" in screen_text(app).splitlines()[-1]  # the keys are in the footer

        # one step finer each time, down to a second; then no further
        for unit in ("day", "hour", "minute", "second"):
            await pilot.press("plus")
            await level_is(units[unit])
            await shown(f"Commits over time: 1 column = 1 {unit_name(units[unit])}")
        await pilot.press("plus")
        await wait_for(pilot, lambda: "already at the finest zoom" in screen_text(app))
        assert histogram.level == units["second"]

        for unit in ("minute", "hour", "day"):
            await pilot.press("minus")
            await level_is(units[unit])
        await shown("Commits over time: 1 column = 1 day")
        assert "/day" in screen_text(app)
        # ← goes to the first commit of the previous day that has commits
        picked = timeline.browser.picked_txid
        assert picked == last_txid
        day = utc(time_of[picked]).date()
        await press_until("left", lambda: timeline.browser.picked_txid != picked, "a step back")
        landed = timeline.browser.picked_txid
        assert utc(time_of[landed]).date() == day.fromordinal(day.toordinal() - 1)
        assert utc(time_of[landed - 1]).date() < utc(time_of[landed]).date()
        await press_until("right", lambda: timeline.browser.picked_txid != landed, "a step on")
        assert utc(time_of[timeline.browser.picked_txid]).date() == day

        # at an hour a column, one step is the previous hour with commits: 8 h earlier
        await pilot.press("plus")
        await level_is(units["hour"])
        before = timeline.browser.picked_txid
        await press_until("left", lambda: timeline.browser.picked_txid != before, "a step back")
        assert time_of[before] - time_of[timeline.browser.picked_txid] == SPREAD_STEP_US
        assert "▲" in screen_text(app)

        await pilot.press("minus", "minus")
        await level_is(WHOLE)
        await pilot.press("minus")  # the widest already: it stays, and says so
        await wait_for(pilot, lambda: "already at the widest zoom" in screen_text(app))
        assert histogram.level == WHOLE
