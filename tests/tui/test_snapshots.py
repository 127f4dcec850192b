"""Snapshot tests (pytest-textual-snapshot): fixed data, fixed clock, fixed terminal size.

Every screen at 80x24 (the ``*_80x24`` tests: what a default terminal shows),
and the main ones again at a larger size (their full layouts).

Update after an intended change with ``pytest tests/tui --snapshot-update`` and
commit the SVGs under ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from replica_builders import BASE_TIME_US, spread_generation, write_fixed_replica, write_records
from screen_capture import wait_for
from textual.widgets import Input

from litetool.engine.runtime.status import StatusBoard
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.daemon_client import DaemonUnreachable, StatusView
from litetool.tui.restore_point_browser import RestorePointBrowser
from litetool.tui.restore_screen import RestoreScreen

NOW_US = BASE_TIME_US + 90_000_000
FIXED_URL = "memory://tui-snapshot-replica"
SPREAD_URL = "memory://tui-snapshot-spread"
SMALL = (80, 24)


def fixed_board() -> StatusBoard:
    board = StatusBoard(version="0.1.0")
    board.update_database(
        "/srv/app.db",
        state="replicating",
        generation="019ab8e2b4002222",
        generation_reason="first run",
        txid=1842,
        last_commit_us=NOW_US - 1_250_000,
        page_size=4096,
        db_size_bytes=52 * 2**20,
        wal_size_bytes=3_960_000,
        spool_bytes=182_000,
        checkpoints={"PASSIVE": 14, "TRUNCATE": 1},
    )
    board.update_replica(
        "/srv/app.db",
        "s3",
        url="s3://backups/app",
        state="ok",
        generation="019ab8e2b4002222",
        published_txid=1842,
        published_time_us=NOW_US - 1_250_000,
        last_sync_us=NOW_US - 1_000_000,
        syncs=311,
    )
    board.update_replica(
        "/srv/app.db",
        "nas",
        url="file:///mnt/nas/app",
        state="backoff",
        generation="019ab8e2b4002222",
        published_txid=1790,
        published_time_us=NOW_US - 47_000_000,
        last_sync_us=NOW_US - 45_000_000,
        syncs=290,
        sync_errors=4,
        last_error="error: cannot reach file:///mnt/nas/app: No such device (hint: retrying)",
    )
    board.update_database(
        "/srv/queue.db",
        state="starting",
        generation=None,
        txid=0,
    )
    board.update_replica("/srv/queue.db", "s3", url="s3://backups/queue", state="snapshotting")
    events = [
        (
            NOW_US - 60_000_000,
            "generation",
            "/srv/app.db",
            "new generation 019ab8e2b4002222: first run",
            None,
        ),
        (NOW_US - 59_900_000, "snapshot", "/srv/app.db", "snapshot at txid 1700 to s3", "s3"),
        (
            NOW_US - 45_000_000,
            "error",
            "/srv/app.db",
            "error: cannot reach file:///mnt/nas/app: No such device",
            "nas",
        ),
        (NOW_US - 2_000_000, "captured", "/srv/app.db", "txids 1840..1842", None),
        (NOW_US - 1_000_000, "synced", "/srv/app.db", "txids 1838..1842 to s3", "s3"),
    ]
    for time_us, kind, database, message, replica in events:
        with mock.patch("litetool.engine.runtime.status.time.time", return_value=time_us / 1e6):
            board.publish(kind, database, message, replica=replica)
    return board


@pytest.fixture(scope="module")
def fixed_replica() -> ReplicaTarget:
    asyncio.run(write_fixed_replica(FIXED_URL))
    return ReplicaTarget("replica", FIXED_URL, (FIXED_URL,), database="/srv/app.db")


def browse_app(target: ReplicaTarget) -> LitetoolApp:
    return LitetoolApp(TuiOptions(replicas=(target,)))


async def points_loaded(pilot) -> None:
    timeline = pilot.app.timeline_screen
    await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
    await details_settled(pilot)


async def details_settled(pilot) -> None:
    """Wait until the segments the rows on screen need are fetched (their times exact)."""
    timeline = pilot.app.timeline_screen
    await wait_for(pilot, lambda: timeline.browser.details_settled, what="segment details")


def test_live_screen(snap_compare):
    app = LitetoolApp(TuiOptions(board=fixed_board(), clock=lambda: NOW_US / 1e6))
    assert snap_compare(app, terminal_size=(150, 30))


def test_timeline_screen(snap_compare, fixed_replica):
    async def pick_a_point(pilot):
        await points_loaded(pilot)
        await pilot.press("enter", "up", "up", "left")
        await details_settled(pilot)

    assert snap_compare(browse_app(fixed_replica), terminal_size=(120, 40), run_before=pick_a_point)


def test_timeline_screen_before_fetching(snap_compare, fixed_replica, monkeypatch):
    # As the index records alone show it: times and sizes inside segments pending (…),
    # the histogram spreading each segment over its first..last commit time.
    monkeypatch.setattr(RestorePointBrowser, "DETAILS_DELAY_SECONDS", 3600.0)

    async def loaded(pilot):
        timeline = pilot.app.timeline_screen
        await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
        await pilot.press("enter", "up", "up")

    assert snap_compare(browse_app(fixed_replica), terminal_size=(120, 40), run_before=loaded)


def test_restore_dialog(snap_compare, fixed_replica, monkeypatch):
    # The dialog proposes <cwd>/<name>-txid<N>.db first: make the cwd the same in
    # every checkout, or the input's scroll position differs between clones.
    monkeypatch.chdir("/")

    async def open_dialog(pilot):
        await points_loaded(pilot)
        await pilot.press("enter", "up", "up")
        await details_settled(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RestoreScreen))
        output = pilot.app.screen.query_one("#output", Input)
        output.cursor_blink = False  # a blinking cursor is drawn or not by the clock
        output.value = "/srv/restored/app-txid69.db"

    assert snap_compare(browse_app(fixed_replica), terminal_size=(120, 36), run_before=open_dialog)


def test_help_screen(snap_compare, fixed_replica):
    async def open_help(pilot):
        await points_loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(browse_app(fixed_replica), terminal_size=(100, 40), run_before=open_help)


# -- 80x24 ------------------------------------------------------------------------------------


def test_live_screen_80x24(snap_compare):
    app = LitetoolApp(TuiOptions(board=fixed_board(), clock=lambda: NOW_US / 1e6))
    assert snap_compare(app, terminal_size=SMALL)


def test_live_screen_daemon_unreachable_80x24(snap_compare, monkeypatch):
    # The daemon answers once, then not any more. (A real daemon is in
    # test_live_screen; here the address and the times must be the same every run.)
    board = fixed_board()
    answers = [StatusView(board.databases(), NOW_US, "0.1.0", tuple(board.events_since(0)))]

    def fetch_status(addr, *, events_since=None, timeout_seconds=2.0):
        if answers:
            return answers.pop()
        raise DaemonUnreachable(f"cannot reach the daemon at {addr}: Connection refused")

    monkeypatch.setattr("litetool.tui.app.fetch_status", fetch_status)
    app = LitetoolApp(TuiOptions(attach_addr="127.0.0.1:9090", clock=lambda: NOW_US / 1e6))

    async def unreachable(pilot):
        live = pilot.app.screen
        await wait_for(pilot, lambda: live.lost == "unknown", what="the unknown state")

    assert snap_compare(app, terminal_size=SMALL, run_before=unreachable)


def test_timeline_screen_80x24(snap_compare, fixed_replica):
    assert snap_compare(browse_app(fixed_replica), terminal_size=SMALL, run_before=points_loaded)


def test_restore_points_80x24(snap_compare, fixed_replica):
    async def pick_a_point(pilot):
        await points_loaded(pilot)
        await pilot.press("enter", "up", "up", "left")
        await details_settled(pilot)

    assert snap_compare(browse_app(fixed_replica), terminal_size=SMALL, run_before=pick_a_point)


@pytest.fixture(scope="module")
def spread_replica() -> ReplicaTarget:
    _, records, payloads = spread_generation(days=120)
    asyncio.run(write_records(SPREAD_URL, records, payloads))
    return ReplicaTarget("replica", SPREAD_URL, (SPREAD_URL,), database="/srv/app.db")


def test_restore_points_zoomed_to_hours_80x24(snap_compare, spread_replica):
    async def zoom_in(pilot):
        await points_loaded(pilot)
        await pilot.press("enter", "plus", "plus", "left", "left")
        await details_settled(pilot)

    assert snap_compare(browse_app(spread_replica), terminal_size=SMALL, run_before=zoom_in)


def test_restore_dialog_80x24(snap_compare, fixed_replica, monkeypatch):
    monkeypatch.chdir("/")

    async def open_dialog(pilot):
        await points_loaded(pilot)
        await pilot.press("enter", "up", "up")
        await details_settled(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RestoreScreen))
        output = pilot.app.screen.query_one("#output", Input)
        output.cursor_blink = False  # a blinking cursor is drawn or not by the clock
        output.value = "/srv/restored/app-txid69.db"

    assert snap_compare(browse_app(fixed_replica), terminal_size=SMALL, run_before=open_dialog)


def test_help_screen_80x24(snap_compare, fixed_replica):
    async def open_help(pilot):
        await points_loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(browse_app(fixed_replica), terminal_size=SMALL, run_before=open_help)
