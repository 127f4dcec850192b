"""The restore command line the dialog runs, output checks, one-line failures, streaming."""

import asyncio
import sys

import pytest

from litetool.tui.options import ReplicaTarget
from litetool.tui.restore_command import (
    RestoreRequest,
    check_output_path,
    command_line,
    restore_argv,
    run_streaming,
    summarize_failure,
)

URL_TARGET = ReplicaTarget("replica", "s3://bucket/app", ("s3://bucket/app",))
CONFIG_TARGET = ReplicaTarget(
    "s3",
    "s3://bucket/app",
    ("--config", "/etc/lt.toml", "--replica", "s3", "/srv/app.db"),
    database="/srv/app.db",
)


def test_argv_for_a_replica_url():
    request = RestoreRequest(URL_TARGET, "01a210ffa06b0c4c", 17, "/tmp/out.db")
    assert restore_argv(request, dry_run=True) == [
        "restore",
        "-o",
        "/tmp/out.db",
        "--generation",
        "01a210ffa06b0c4c",
        "--txid",
        "17",
        "--dry-run",
        "s3://bucket/app",
    ]
    assert command_line(request, dry_run=False) == [
        sys.executable,
        "-m",
        "litetool",
        "restore",
        "-o",
        "/tmp/out.db",
        "--generation",
        "01a210ffa06b0c4c",
        "--txid",
        "17",
        "s3://bucket/app",
    ]


def test_argv_for_a_database_from_the_config_names_config_and_replica():
    request = RestoreRequest(CONFIG_TARGET, "01a210ffa06b0c4c", 5, "/tmp/out.db")
    assert restore_argv(request, dry_run=False)[-5:] == [
        "--config",
        "/etc/lt.toml",
        "--replica",
        "s3",
        "/srv/app.db",
    ]


def test_argv_parses_with_the_real_restore_command():
    """The arguments the TUI builds are the ones ``litetool restore`` accepts."""
    from litetool.cli import build_parser

    request = RestoreRequest(CONFIG_TARGET, "01a210ffa06b0c4c", 5, "/tmp/out.db")
    args = build_parser().parse_args(restore_argv(request, dry_run=True))
    assert (args.command, args.output, args.txid, args.generation) == (
        "restore",
        "/tmp/out.db",
        "5",
        "01a210ffa06b0c4c",
    )
    assert (args.config, args.replica, args.source, args.dry_run) == (
        "/etc/lt.toml",
        "s3",
        "/srv/app.db",
        True,
    )


def test_output_path_must_be_new_in_an_existing_directory(tmp_path):
    assert check_output_path("out.db", cwd=str(tmp_path)) == str(tmp_path / "out.db")
    (tmp_path / "taken.db").write_bytes(b"")
    with pytest.raises(ValueError, match="already exists"):
        check_output_path(str(tmp_path / "taken.db"))
    with pytest.raises(ValueError, match="output directory not found: "):
        check_output_path(str(tmp_path / "missing" / "out.db"))
    (tmp_path / "new.db-wal").write_bytes(b"")  # `litetool restore -o` refuses it too
    with pytest.raises(ValueError, match="SQLite would apply it"):
        check_output_path("new.db", cwd=str(tmp_path))
    with pytest.raises(ValueError, match="enter the path"):
        check_output_path("  ")


def test_failure_is_the_error_line_never_a_traceback():
    lines = ["restoring...", "error: no litetool replica at file:///x (hint: check the URL)"]
    assert summarize_failure(lines, 1) == lines[1]
    argparse_lines = ["usage: litetool ...", "litetool: error: argument COMMAND: invalid choice"]
    assert summarize_failure(argparse_lines, 2) == argparse_lines[1]
    assert summarize_failure(["ValueError: boom"], 70) == "ValueError: boom"
    assert summarize_failure([], -9) == "litetool restore was killed by signal 9"
    assert summarize_failure(["", " "], 3) == "litetool restore failed with exit status 3"


async def test_run_streaming_splits_lines_and_carriage_returns():
    script = (
        "import sys\n"
        "print('plan line 1'); print('plan line 2')\n"
        "sys.stderr.write('10%\\r50%\\r100%\\n'); sys.stderr.flush()\n"
        "sys.stdout.write('no newline at the end'); sys.exit(3)\n"
    )
    seen: list[tuple[str, str]] = []
    code = await run_streaming(
        [sys.executable, "-c", script], lambda stream, line: seen.append((stream, line))
    )
    assert code == 3
    assert [line for stream, line in seen if stream == "stdout"] == [
        "plan line 1",
        "plan line 2",
        "no newline at the end",
    ]
    assert [line for stream, line in seen if stream == "stderr"] == ["10%", "50%", "100%"]


async def test_cancelling_terminates_the_child():
    started = []
    task = asyncio.create_task(
        run_streaming(
            [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
            lambda stream, line: None,
            started=started.append,
        )
    )
    while not started:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started[0].returncode is not None
