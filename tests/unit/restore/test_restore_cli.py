"""``litetool restore`` in-process: arguments, output rules, dry run, exit codes, messages."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sqlite3

import pytest
from restore_builders import BASE_TIME_US, build_replica, make_states

from litetool.cli import main
from litetool.storage import Replica
from litetool.timespec import format_instant_us

_names = itertools.count()
COUNT = 12


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    return make_states(tmp_path_factory.mktemp("states") / "source.db", COUNT, seed=3)


@pytest.fixture
def replica_url(states, tmp_path):
    url = (tmp_path / "replica").as_uri()
    asyncio.run(build_replica(Replica.open(url), states, segment_sizes=[2, 3]))
    return url


def run_cli(capsys, *argv):
    code = main(["restore", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_restore_latest_prints_the_chosen_point(capsys, replica_url, states, tmp_path):
    out = tmp_path / "restored.db"
    code, stdout, err = run_cli(capsys, replica_url, "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == states[COUNT]
    when = format_instant_us(BASE_TIME_US + COUNT * 1000)
    assert f"restoring txid {COUNT} (committed {when}) of generation " in stdout
    assert "from replica replica (" in stdout
    assert f"restored {out}: txid {COUNT}, committed {when}" in stdout


def test_restore_at_a_time_and_a_txid(capsys, replica_url, states, tmp_path):
    at = format_instant_us(BASE_TIME_US + 5 * 1000 + 999)
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "a.db"), "--at", at)
    assert code == 0, err
    assert (tmp_path / "a.db").read_bytes() == states[5]
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "t.db"), "--txid", "7")
    assert code == 0, err
    assert (tmp_path / "t.db").read_bytes() == states[7]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--at", "yesterday-ish"], "error: --at: invalid time 'yesterday-ish'"),
        (["--at", "2025-13-01T00:00Z"], "error: --at: invalid time"),
        (["--txid", "x7"], "error: --txid: 'x7' is not a whole number"),
        (["--txid", "-1"], "error: --txid: -1 must be at least 0"),
        (["--parallelism", "0"], "error: --parallelism: 0 must be between 1 and 256"),
        (["--generation", "xyz"], "error: --generation: 'xyz' is not a generation id"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(capsys, replica_url, tmp_path, argv, message):
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "x.db"), *argv)
    assert code == 2
    assert one_line_error(err).startswith(message)
    assert os.listdir(tmp_path) == ["replica"]


def test_a_url_needs_an_output(capsys, replica_url):
    code, _, err = run_cli(capsys, replica_url)
    assert code == 2
    assert "-o OUT is required" in one_line_error(err)


def test_dry_run_prints_the_plan_and_writes_nothing(capsys, replica_url, tmp_path):
    before = sorted(p for p in tmp_path.rglob("*"))
    code, stdout, err = run_cli(capsys, replica_url, "--dry-run", "--txid", "4")
    assert code == 0, err
    for text in ("dry run", "generation", "txid 4, committed", "snapshot    txid 0", "to fetch"):
        assert text in stdout
    assert "segments    2: apply txids 1..4" in stdout
    code, stdout, _ = run_cli(capsys, replica_url, "--dry-run", "-o", str(tmp_path / "d.db"))
    assert code == 0 and f"output      {tmp_path / 'd.db'}" in stdout
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_dry_run_notes_an_existing_output(capsys, replica_url, tmp_path):
    (tmp_path / "there.db").write_bytes(b"x")
    code, stdout, _ = run_cli(capsys, replica_url, "--dry-run", "-o", str(tmp_path / "there.db"))
    assert code == 0
    assert "note        " in stdout and "already exists" in stdout


def test_an_existing_output_is_refused_untouched(capsys, replica_url, tmp_path):
    out = tmp_path / "there.db"
    out.write_bytes(b"mine")
    code, stdout, err = run_cli(capsys, replica_url, "-o", str(out))
    assert code == 1
    assert "already exists; restore never overwrites it" in one_line_error(err)
    assert out.read_bytes() == b"mine" and stdout == ""
    code, stdout, err = run_cli(capsys, replica_url, "-o", str(out), "--if-db-not-exists")
    assert code == 0 and "nothing to restore" in stdout and err == ""
    assert out.read_bytes() == b"mine"


def test_an_output_in_a_missing_directory_is_refused_as_the_tui_refuses_it(
    capsys, replica_url, tmp_path
):
    """restore -o /missing/dir/x.db used to create /missing/dir; the TUI refused it."""
    from litetool.tui.restore_command import check_output_path

    out = tmp_path / "missing" / "dir" / "x.db"
    before = sorted(tmp_path.rglob("*"))
    code, stdout, err = run_cli(capsys, replica_url, "-o", str(out))
    assert code == 1 and stdout == ""
    line = one_line_error(err)
    assert line == (
        f"error: output directory not found: {out.parent} "
        "(hint: create it first, or check the path)"
    )
    assert sorted(tmp_path.rglob("*")) == before
    # One check, one wording: the TUI's restore dialog says the same.
    with pytest.raises(ValueError) as refused:
        check_output_path(str(out))
    assert line.startswith(f"error: {refused.value} (hint: ")
    # A file where the directory should be.
    (tmp_path / "a-file").write_bytes(b"")
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "a-file" / "x.db"))
    assert code == 1 and f"{tmp_path / 'a-file'} is not a directory" in one_line_error(err)
    # A dry run says so in its plan, and makes nothing either.
    code, stdout, err = run_cli(capsys, replica_url, "--dry-run", "-o", str(out))
    assert code == 0, err
    assert f"note        output directory not found: {out.parent}" in stdout
    assert not (tmp_path / "missing").exists()


def test_a_failed_restore_to_the_configured_path_removes_the_directory_it_made(
    capsys, replica_url, tmp_path
):
    """The database's own path from the config still gets its directory (a restore on
    a fresh machine), and a failure takes it away again."""
    code, stdout, _ = run_cli(capsys, replica_url, "--dry-run")
    last_segment = [line.split() for line in stdout.splitlines() if "  txids " in line][-1][0]
    path = next((tmp_path / "replica" / "objects").glob(f"*/{last_segment}*"))
    path.write_bytes(path.read_bytes()[:-1])
    db = tmp_path / "app" / "data" / "app.db"
    config = tmp_path / "litetool.toml"
    config.write_text(
        f'[[databases]]\npath = "{db}"\n[[databases.replicas]]\nurl = "{replica_url}"\n'
    )
    code, _, err = run_cli(capsys, str(db), "--config", str(config))
    assert code == 1 and "corrupt object" in one_line_error(err)
    assert not (tmp_path / "app").exists()


def test_no_backup(capsys, tmp_path):
    url = (tmp_path / "empty").as_uri()
    code, _, err = run_cli(capsys, url, "-o", str(tmp_path / "x.db"))
    assert code == 1
    assert one_line_error(err) == f"error: no backups found in {url}"
    code, stdout, err = run_cli(capsys, url, "-o", str(tmp_path / "x.db"), "--if-replica-exists")
    assert code == 0 and "no backups found" in stdout and err == ""
    assert not (tmp_path / "x.db").exists()


def test_an_unreachable_target_names_one_that_works(capsys, replica_url, tmp_path):
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "x.db"), "--txid", "99")
    assert code == 1
    assert f"(latest: --txid {COUNT}, committed" in one_line_error(err)
    code, _, err = run_cli(
        capsys, replica_url, "-o", str(tmp_path / "x.db"), "--at", "2001-01-01T00:00Z"
    )
    line = one_line_error(err)
    assert "no restore point at or before 2001-01-01T00:00:00.000000Z" in line
    assert f"use --at {format_instant_us(BASE_TIME_US)} or later" in line


def test_a_corrupt_object_fails_with_its_key_and_a_hint(capsys, replica_url, tmp_path):
    code, stdout, _ = run_cli(capsys, replica_url, "--dry-run")
    segment_lines = [line.split() for line in stdout.splitlines() if "  txids " in line]
    last_segment = segment_lines[-1][0]
    objects = tmp_path / "replica" / "objects"
    path = next(objects.glob(f"*/{last_segment}*"))
    path.write_bytes(path.read_bytes()[:-1])
    code, _, err = run_cli(capsys, replica_url, "-o", str(tmp_path / "x.db"))
    assert code == 1
    line = one_line_error(err)
    assert f"corrupt object objects/{path.parent.name}/{path.name}" in line
    assert "(hint: the latest restore point that avoids it is txid 11 of generation" in line
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "x.db.tmp").exists()


def test_restore_from_the_config_defaults_to_the_database_path(capsys, states, tmp_path):
    urls = [(tmp_path / name).as_uri() for name in ("one", "two")]
    asyncio.run(build_replica(Replica.open(urls[1]), states))
    db = tmp_path / "app" / "app.db"
    config = tmp_path / "litetool.toml"
    config.write_text(
        f'[[databases]]\npath = "{db}"\n'
        f'[[databases.replicas]]\nurl = "{urls[0]}"\nname = "one"\n'
        f'[[databases.replicas]]\nurl = "{urls[1]}"\nname = "two"\n'
    )
    code, stdout, err = run_cli(capsys, str(db), "--config", str(config), "--replica", "one")
    assert one_line_error(err) == f"error: no backups found in {urls[0]}" and code == 1
    code, stdout, err = run_cli(capsys, str(db), "--config", str(config))
    assert code == 0, err
    assert "from replica two" in stdout
    assert db.read_bytes() == states[COUNT]
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    assert sorted(os.listdir(db.parent)) == ["app.db"]
    code, _, err = run_cli(capsys, str(db), "--config", str(config))
    assert code == 1 and "already exists" in err


def drawn_lines(text: str) -> list[str]:
    """Every state of a one-line progress bar, as the terminal showed it."""
    return [part.removesuffix("\n").removesuffix("\x1b[K") for part in text.split("\r") if part]


PROGRESS = re.compile(
    r"^\[(?P<bar>[#.]+)\] +(?P<percent>\d+)% +(?P<got>[\d.]+ \w+)/(?P<total>[\d.]+ \w+) +"
    r"(?P<done>\d+)/(?P<objects>\d+) +objects"
)


def test_the_terminal_progress_bar_draws_bytes_objects_and_phases():
    import io

    from litetool.cli.restore import TerminalProgress

    stream = io.StringIO()
    progress = TerminalProgress(stream, columns=120)
    progress.start(4 << 20, 4)
    progress.retotal(4 << 20, 5)
    for _ in range(5):
        progress.advance(1 << 20, 1)
    progress.phase("checking integrity")
    progress.finish(True)
    text = stream.getvalue()
    last = drawn_lines(text)[-1]
    assert last.startswith("[" + "#" * 10)
    assert " ".join(last.split()[1:7]) == "100% 5.0 MiB/5.0 MiB 5/5 objects"
    assert re.search(r" (\d+ B|[\d.]+ [KMGT]iB)/s ", last), last  # a rate, on a wide terminal
    assert last.rstrip().endswith("checking integrity")
    assert text.endswith("\n")
    failed = io.StringIO()
    progress = TerminalProgress(failed)
    progress.start(100, 1)
    progress.finish(False)
    assert failed.getvalue().endswith("\r\x1b[K")  # the line is cleared for the error


def test_the_progress_bar_keeps_its_width_and_says_100_only_when_every_object_is_in():
    """It used to grow and shrink as the numbers did, and to say `100% ... 45/50 objects`:
    parallel downloads fetch the bytes ahead of the objects being written."""
    import io

    from litetool.cli.restore import TerminalProgress

    stream = io.StringIO()
    progress = TerminalProgress(stream, interval=0, columns=100)
    progress.start(50 << 20, 50)
    progress.advance(0, 0)
    progress.advance(300, 1)  # small numbers first: 300 B
    progress.advance((40 << 20) - 300, 39)
    progress.advance(10 << 20, 5)  # every byte is in, 45 of 50 objects are written
    at_45 = drawn_lines(stream.getvalue())[-1]
    assert PROGRESS.match(at_45)["percent"] == "90", at_45
    progress.advance(0, 4)
    progress.advance(0, 1)
    progress.phase("checking integrity")
    progress.finish(True)
    lines = drawn_lines(stream.getvalue())
    assert len({len(line) for line in lines}) == 1, lines
    assert len({len(PROGRESS.match(line)["bar"]) for line in lines}) == 1, lines
    for line in lines:
        shown = PROGRESS.match(line)
        done, objects = int(shown["done"]), int(shown["objects"])
        assert int(shown["percent"]) <= 100 * done // objects, line
        assert (shown["percent"] == "100") == (done == objects), line


async def test_a_real_restore_draws_a_steady_bar_that_ends_at_100(states, tmp_path):
    """The bar of a parallel restore of many small objects, every update drawn."""
    import io

    from litetool.cli.restore import TerminalProgress
    from litetool.restore import RestoreTarget, load_replicas, plan_fetching, restore_plan

    replica = Replica.open((tmp_path / "replica").as_uri())
    await build_replica(replica, states, segment_sizes=[1] * COUNT)
    loaded = await load_replicas([replica])
    plan, candidates = await plan_fetching(loaded.candidates, RestoreTarget(), [replica])
    stream = io.StringIO()
    progress = TerminalProgress(stream, interval=0, columns=100)
    await restore_plan(
        plan, [replica], candidates, tmp_path / "out.db", parallelism=8, progress=progress
    )
    assert (tmp_path / "out.db").read_bytes() == states[COUNT]
    lines = drawn_lines(stream.getvalue())
    assert len(lines) > COUNT
    assert len({len(line) for line in lines}) == 1, lines
    for line in lines:
        shown = PROGRESS.match(line)
        done, objects = int(shown["done"]), int(shown["objects"])
        assert int(shown["percent"]) <= 100 * done // objects, line
    assert PROGRESS.match(lines[-1])["percent"] == "100"
    assert PROGRESS.match(lines[-1])["done"] == PROGRESS.match(lines[-1])["objects"]
