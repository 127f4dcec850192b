"""At 80x24: Quit and Help stay in the footer, and the tables' columns fit the width."""

from __future__ import annotations

from replica_builders import write_long_replica
from screen_capture import screen_text, wait_for
from test_snapshots import fixed_board
from textual.widgets import DataTable

from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.restore_screen import RestoreScreen

SMALL = (80, 24)


def footer(app) -> str:
    return screen_text(app).splitlines()[-1]


def fits(table: DataTable) -> bool:
    """Every column is on screen: nothing to scroll sideways."""
    return table.row_count > 0 and table.max_scroll_x == 0


def column_keys(table: DataTable) -> list[str]:
    return [column.key.value for column in table.ordered_columns]


def braking_board():
    board = fixed_board()  # plus the widest spool cell there is
    board.update_database("/srv/app.db", spool_bytes=123_456_789, backpressure=True)
    return board


async def test_quit_and_help_lead_every_footer(tmp_path):
    url = (tmp_path / "long").as_uri()
    await write_long_replica(url)
    targets = (ReplicaTarget("first", url, (url,)), ReplicaTarget("second", url, (url,)))
    app = LitetoolApp(TuiOptions(replicas=targets, board=fixed_board()))
    async with app.run_test(size=SMALL) as pilot:

        async def footer_starts(text: str) -> None:
            await wait_for(pilot, lambda: footer(app).startswith(text), what=text)

        assert app.screen.id == "live"
        await footer_starts("q Quit ? Help ")
        await pilot.press("t")
        timeline = app.timeline_screen
        await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
        await footer_starts("q Quit ? Help ⏎ Restore points ")
        assert "r Next replica" in footer(app)
        await pilot.press("enter")  # to the restore points: the most keys of any screen
        await footer_starts("q Quit ? Help ⏎ Restore… ←→ Earlier/later g Go to +- Zoom")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RestoreScreen), what="the dialog")
        await footer_starts("esc Close / cancel")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.id == "timeline", what="the timeline")
        await pilot.press("question_mark")
        await footer_starts("esc Close")


async def test_the_tables_fit_80_columns_and_show_all_of_them_when_wide(tmp_path):
    url = (tmp_path / "long").as_uri()
    await write_long_replica(url)
    target = ReplicaTarget("replica", url, (url,), database="/srv/app.db")
    app = LitetoolApp(TuiOptions(replicas=(target,), board=braking_board()))
    async with app.run_test(size=SMALL) as pilot:
        live = app.screen
        databases = live.query_one("#databases", DataTable)
        replicas = live.query_one("#replicas", DataTable)
        await wait_for(pilot, lambda: databases.row_count == 2, what="the board")
        assert fits(databases) and fits(replicas)
        assert column_keys(databases) == [
            "database",
            "state",
            "txid",
            "last_commit",
            "spool",
            "errors",
        ]
        assert column_keys(replicas) == [
            "replica",
            "state",
            "lag",
            "lag_time",
            "last_sync",
            "errors",
        ]
        assert "118 MiB BRAKING" in screen_text(app)

        await pilot.press("t")
        timeline = app.timeline_screen
        await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
        await wait_for(pilot, lambda: timeline.browser.details_settled, what="segment details")
        generations = timeline.query_one("#generations", DataTable)
        points = timeline.query_one("#points", DataTable)
        assert fits(generations) and fits(points)
        assert column_keys(generations) == ["generation", "commits", "txids", "reason"]
        assert column_keys(points) == ["txid", "time", "gap", "db_size", "stored_in"]
        assert "Committed (UTC)" in screen_text(app) and "seg 40 (" in screen_text(app)

        await pilot.resize_terminal(160, 40)  # wide: every column, full labels
        await wait_for(pilot, lambda: len(column_keys(generations)) == 6, what="the full layout")
        await wait_for(pilot, lambda: "Since previous" in screen_text(app), what="full labels")
        assert "segment 40 (" in screen_text(app) and points.row_count == 401
        await pilot.press("l")
        await wait_for(pilot, lambda: len(column_keys(databases)) == 10, what="the full layout")
        assert len(column_keys(replicas)) == 10
