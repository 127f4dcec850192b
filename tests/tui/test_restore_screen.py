"""The restore dialog end to end: pick a point, plan (dry run), restore, check the rows."""

from __future__ import annotations

from replica_builders import repack_replica, restored_rows
from screen_capture import screen_text, wait_for
from textual.widgets import Button, Input

from litetool.storage import Replica
from litetool.timespec import format_instant_us
from litetool.tui import LitetoolApp, ReplicaTarget, TuiOptions
from litetool.tui.restore_point_browser import RestorePointBrowser
from litetool.tui.restore_screen import RestoreScreen

SIZE = (120, 40)
SMALL = (80, 24)


def browse(target: ReplicaTarget) -> LitetoolApp:
    return LitetoolApp(TuiOptions(replicas=(target,)))


async def open_dialog(pilot, txid: int) -> RestoreScreen:
    app = pilot.app
    timeline = app.timeline_screen
    await wait_for(pilot, lambda: timeline.browser.points is not None, what="restore points")
    await pilot.press("enter")  # to the restore points
    while timeline.browser.picked_txid > txid:
        await pilot.press("up")
    assert timeline.browser.picked_txid == txid
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RestoreScreen), what="the dialog")
    return app.screen


def result_line(dialog: RestoreScreen) -> str:
    return str(dialog.query_one("#result").content)


def log_text(dialog: RestoreScreen) -> str:
    """The dialog's output log (unwrapped lines joined; long lines wrap on screen)."""
    log = dialog.query_one("#log")
    return "".join(strip.text for strip in log.lines)


async def set_output(pilot, dialog: RestoreScreen, path) -> None:
    field = dialog.query_one("#output", Input)
    field.value = str(path)
    await pilot.pause()


async def test_pick_a_point_plan_and_restore_it(engine_replica, tmp_path):
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    txid = info.last_txid - 4  # rows 0 .. rows-5 exist after it
    target = ReplicaTarget(
        "replica", engine_replica.url, (engine_replica.url,), database=str(engine_replica.db_path)
    )
    app = browse(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, txid)
        text = screen_text(app)
        assert f"txid {txid}" in text and info.generation in text
        # the suggested output is new: <db name>-txid<N>.db in the current directory
        assert dialog.query_one("#output", Input).value.endswith(f"app-txid{txid}.db")
        assert dialog.query_one("#run", Button).disabled  # no restore before a plan

        output = tmp_path / "restored.db"
        await set_output(pilot, dialog, output)
        await pilot.press("enter")  # in the output field: the dry run
        await wait_for(pilot, lambda: dialog.planned_output is not None, what="the plan")
        assert "--dry-run" in log_text(dialog) and "plan above" in result_line(dialog)
        assert not output.exists()
        assert app.focused.id == "run" and not dialog.query_one("#run", Button).disabled

        await pilot.press("enter")  # Restore
        await wait_for(pilot, lambda: dialog.restored_path is not None, what="the restore")
        assert result_line(dialog) == f"restored txid {txid} of {info.generation} to {output}"
        await pilot.press("escape")
        assert app.screen.id == "timeline"

    # txid first_txid is the snapshot with no rows; every later txid added one row
    expected = txid - info.first_txid
    assert restored_rows(output) == list(range(expected))
    assert expected == engine_replica.rows - 4


async def test_an_existing_output_is_refused_before_running(engine_replica, tmp_path):
    target = ReplicaTarget("replica", engine_replica.url, (engine_replica.url,))
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"precious")
    app = browse(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, info.last_txid)
        await set_output(pilot, dialog, taken)
        await pilot.press("enter")
        assert result_line(dialog) == (
            f"error: {taken} already exists; restore never overwrites it"
        )
        assert dialog.running is None and dialog.planned_output is None
    assert taken.read_bytes() == b"precious"


async def test_a_failing_restore_is_one_line_without_traceback(engine_replica, tmp_path):
    # The timeline reads the real replica, but the restore command is pointed at a
    # location with no replica: the child fails, the dialog shows its one error line.
    missing = (tmp_path / "no-replica-here").as_uri()
    target = ReplicaTarget("replica", engine_replica.url, (missing,))
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    app = browse(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, info.last_txid)
        await set_output(pilot, dialog, tmp_path / "out.db")
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.running is None, what="the child to exit")
        result = result_line(dialog)
        assert result.startswith("error: ") and "\n" not in result
        assert "Traceback" not in screen_text(app)
        assert dialog.planned_output is None and dialog.query_one("#run", Button).disabled
    assert not (tmp_path / "out.db").exists()


async def test_the_focus_after_plan_is_on_restore_and_the_plan_is_in_view(engine_replica, tmp_path):
    target = ReplicaTarget("replica", engine_replica.url, (engine_replica.url,))
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    app = browse(target)
    async with app.run_test(size=SMALL) as pilot:
        dialog = await open_dialog(pilot, info.last_txid)
        assert app.focused.id == "output"
        output = tmp_path / "restored.db"
        await set_output(pilot, dialog, output)
        await pilot.press("tab")  # to the Plan button
        await wait_for(pilot, lambda: app.focused.id == "plan", what="the Plan button")
        await pilot.press("enter")
        # A quick plan may be done before a look catches it running.
        await wait_for(
            pilot,
            lambda: dialog.running == "plan" or dialog.planned_output is not None,
            what="the plan to start",
        )
        assert app.focused.id in ("plan", "run")  # never moved to Close while it plans
        await wait_for(pilot, lambda: dialog.planned_output is not None, what="the plan")
        # the focus is on Restore, and the line under the log says what enter does
        await wait_for(pilot, lambda: app.focused.id == "run", what="the focus on Restore")
        assert not dialog.query_one("#run", Button).disabled
        assert "enter: Restore writes it" in result_line(dialog)
        text = screen_text(app)
        assert "restore plan (dry run" in text and "target      txid" in text  # not scrolled away
        assert "enter: Restore writes it" in text and "esc Close" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.restored_path is not None, what="the restore")
        await wait_for(pilot, lambda: app.focused.id == "close", what="the focus on Close")
    assert restored_rows(output) == list(range(engine_replica.rows))


async def test_a_plan_that_fails_gives_the_focus_back_to_the_path(engine_replica, tmp_path):
    missing = (tmp_path / "no-replica-here").as_uri()
    target = ReplicaTarget("replica", engine_replica.url, (missing,))
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    app = browse(target)
    async with app.run_test(size=SMALL) as pilot:
        dialog = await open_dialog(pilot, info.last_txid)
        await set_output(pilot, dialog, tmp_path / "out.db")
        await pilot.press("tab", "enter")  # Plan
        await wait_for(pilot, lambda: result_line(dialog).startswith("error: "), what="the error")
        await wait_for(pilot, lambda: app.focused.id == "output", what="the focus on the path")
        assert dialog.running is None and dialog.query_one("#run", Button).disabled


async def test_changing_the_output_after_the_plan_plans_again(
    engine_replica, tmp_path, monkeypatch
):
    # (a second before planning again: time to see that it waits, even under load)
    monkeypatch.setattr(RestoreScreen, "REPLAN_DELAY_SECONDS", 1.0)
    target = ReplicaTarget("replica", engine_replica.url, (engine_replica.url,))
    (info,) = await Replica.open(engine_replica.url).index.list_generations()
    app = browse(target)
    async with app.run_test(size=SMALL) as pilot:
        dialog = await open_dialog(pilot, info.last_txid)
        first, second = tmp_path / "a.db", tmp_path / "b.db"
        await set_output(pilot, dialog, first)
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.planned_output == str(first), what="the plan")
        assert dialog.plans == 1

        dialog.query_one("#output", Input).focus()
        await set_output(pilot, dialog, second)
        # not restorable until the plan for the new path is shown ...
        assert dialog.planned_output is None and dialog.query_one("#run", Button).disabled
        await wait_for(pilot, lambda: dialog.planned_output == str(second), what="the new plan")
        # ... which comes by itself, for that path only, with the focus left in the path
        assert dialog.plans == 2
        await wait_for(pilot, lambda: app.focused.id == "output", what="the focus on the path")
        assert f"output      {second}" in log_text(dialog) and str(first) not in log_text(dialog)
        assert not dialog.query_one("#run", Button).disabled
        assert "for the new path" in result_line(dialog)

        # a path that cannot be written is refused at once, without running anything
        await set_output(pilot, dialog, tmp_path / "no-such-dir" / "c.db")
        await wait_for(
            pilot, lambda: "directory not found" in result_line(dialog), what="the refusal"
        )
        assert dialog.plans == 2 and dialog.query_one("#run", Button).disabled

        await set_output(pilot, dialog, second)
        await wait_for(pilot, lambda: dialog.planned_output == str(second), what="the plan")
        await pilot.press("enter")  # planned already: enter goes to Restore, no new plan
        await wait_for(pilot, lambda: app.focused.id == "run", what="the focus on Restore")
        assert dialog.plans == 3
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.restored_path == str(second), what="the restore")
    assert not first.exists()
    assert restored_rows(second) == list(range(engine_replica.rows))


async def test_a_point_not_fetched_yet_is_planned_and_restored(
    engine_replica, tmp_path, monkeypatch
):
    # The engine's segments regrouped into segments of five transactions or more, and
    # the timeline told not to fetch any: the picked point's time and size are pending.
    url = await repack_replica(engine_replica.url, tmp_path / "repacked", per_segment=5)
    monkeypatch.setattr(RestorePointBrowser, "DETAILS_DELAY_SECONDS", 3600.0)
    replica = Replica.open(url)
    (info,) = await replica.index.list_generations()
    index = await replica.index.load_generation(info.generation)
    segment = index.segments[0]
    assert segment.transaction_count >= 5 and segment.detail is None
    txid = segment.first_txid + 2
    committed = (await replica.fetch_details(index, [segment])).commit_time_us(txid)
    target = ReplicaTarget("replica", url, (url,), database=str(engine_replica.db_path))
    app = browse(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, txid)
        assert dialog.point.txid == txid and dialog.point.time_us is None
        assert dialog.point.db_pages is None
        summary = str(dialog.query_one("#summary").content)
        assert f"txid {txid}, committed … (not fetched yet" in summary
        assert "Database    … after it" in summary

        output = tmp_path / "restored.db"
        await set_output(pilot, dialog, output)
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.planned_output is not None, what="the plan")
        plan_line = f"target      txid {txid}, committed {format_instant_us(committed)}"
        assert plan_line in log_text(dialog)
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog.restored_path is not None, what="the restore")
    assert restored_rows(output) == list(range(txid - info.first_txid))
