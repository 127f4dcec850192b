"""The README's quick start, followed literally.

The commands are read out of README.md's "Quick start" block, so this test
fails when the README drifts from what works. Each runs in a subprocess with
the installed ``litetool`` (found through the PATH the block's first line
sets up), against a real SQLite database that another process (the
"application") writes. Only the placeholders are replaced: the database
path, the replica directory, the bucket, the application behind ``--exec``,
and the values of the exported ``AWS_*`` variables. The S3 part runs against
SeaweedFS on 127.0.0.1 configured by those variables only: the replica URL is
a bare ``s3://bucket/app``. Every restore is compared row by row with the
live database.

``litetool tui`` is the one command not run: it needs a terminal (tests/tui
drive it headless).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent

# The placeholders of the quick start, and what each becomes here.
DB_PLACEHOLDER = "/var/lib/app/app.db"
FILE_REPLICA_PLACEHOLDER = "file:///var/backups/app"
S3_REPLICA_PLACEHOLDER = "s3://my-bucket/app"
APP_PLACEHOLDER = "gunicorn app:app"
ENDPOINT_PLACEHOLDER = "http://127.0.0.1:9000"
# The variables the S3 part exports: all an S3-compatible store needs.
S3_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
}
AT_SECONDS_AGO = 10  # `--at "10s ago"` in the README
FIRST_RUN_SECONDS = AT_SECONDS_AGO + 4
COMMIT_TIME_SLACK = 0.5  # recorded commit times are a few ms after the writer's clock

APPLICATION = r"""
import sqlite3, sys, time
db, seconds = sys.argv[1], float(sys.argv[2])
connection = sqlite3.connect(db, isolation_level=None, timeout=30)
connection.execute("PRAGMA busy_timeout=30000")
deadline = time.time() + seconds
while time.time() < deadline:
    now = time.time()
    connection.execute("INSERT INTO orders(ts, item) VALUES (?, ?)", (now, f"item at {now:.3f}"))
    time.sleep(0.02)
connection.close()
"""


def quick_start_commands() -> list[list[str]]:
    """The commands of the README's quick start block, split as a shell would."""
    section = README.read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the quick start should be one sh block"
    return [argv for line in blocks[0].splitlines() if (argv := shlex.split(line, comments=True))]


def rows(path: Path, where: str = "") -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return connection.execute(f"SELECT id, ts, item FROM orders {where} ORDER BY id").fetchall()


class QuickStart:
    """Runs the quick start's commands in order, as a user in one work directory."""

    def __init__(self, tmp_path: Path, bucket: str, s3_endpoint: str) -> None:
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.db = tmp_path / "app" / "app.db"
        self.db.parent.mkdir()
        self.backups = tmp_path / "backups" / "app"
        self.bucket = bucket
        self.s3_endpoint = s3_endpoint
        self.app_script = tmp_path / "application.py"
        self.app_script.write_text(APPLICATION)
        # The suite's environment (hermetic AWS settings) without litetool on PATH:
        # the block's first line has to put it there.
        path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != VENV_BIN]
        self.env = {**os.environ, "PATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1"}
        self.exported: set[str] = set()
        self.application: subprocess.Popen | None = None
        self.background: tuple[list[str], subprocess.Popen, Path] | None = None
        self.ran: list[str] = []
        with sqlite3.connect(self.db, isolation_level=None) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, ts REAL, item TEXT)")

    # -- placeholders -------------------------------------------------------------------

    def substitute(self, argv: list[str]) -> list[str]:
        replaced = []
        for arg in argv:
            arg = {
                DB_PLACEHOLDER: str(self.db),
                FILE_REPLICA_PLACEHOLDER: self.backups.as_uri(),
                S3_REPLICA_PLACEHOLDER: f"s3://{self.bucket}/app",
                APP_PLACEHOLDER: f"{sys.executable} {self.app_script} {self.db} 2",
            }.get(arg, arg)
            assert "/var/" not in arg and "my-bucket" not in arg, f"unknown placeholder in {argv}"
            replaced.append(arg)
        return replaced

    def export(self, assignments: list[str]) -> None:
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            if value == "...":
                value = {
                    "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
                    "AWS_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
                }[name]
            value = value.replace(ENDPOINT_PLACEHOLDER, self.s3_endpoint)
            self.env[name] = value
            self.exported.add(name)

    # -- the application ------------------------------------------------------------------

    def start_application(self, seconds: float) -> None:
        self.application = subprocess.Popen(
            [sys.executable, str(self.app_script), str(self.db), str(seconds)]
        )

    def wait_application(self) -> None:
        if self.application is not None:
            assert self.application.wait(120) == 0
            self.application = None

    # -- commands -------------------------------------------------------------------------

    def run(self, argv: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
        self.ran.append(shlex.join(argv))
        result = subprocess.run(
            self.substitute(argv),
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"{shlex.join(argv)}:\n{result.stdout}{result.stderr}"
        return result

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """A command that runs until stopped (replicate, daemon)."""
        assert self.background is None, "one litetool per database"
        self.ran.append(shlex.join(argv))
        log = self.work.parent / f"background-{len(self.ran)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                self.substitute(argv),
                cwd=self.work,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.background = (argv, process, log)

    def wait_logged(self, pattern: str, timeout: float = 60) -> None:
        assert self.background is not None
        argv, process, log = self.background
        deadline = time.monotonic() + timeout
        while not re.search(pattern, log.read_text()):
            assert process.poll() is None, f"{shlex.join(argv)} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {pattern!r}:\n{log.read_text()}"
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGINT (Ctrl-C) the running command once the application is done:
        its final sync leaves every transaction on the replica, exit 0."""
        self.wait_application()
        if self.background is None:
            return
        argv, process, log = self.background
        self.background = None
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, f"{shlex.join(argv)}:\n{log.read_text()}"

    def kill(self) -> None:
        for process in (self.application, self.background and self.background[1]):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def check_restore(qs: QuickStart, argv: list[str]) -> None:
    outputs = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("-o", "--output")]
    files = sorted(qs.work.iterdir())
    before = time.time()
    result = qs.run(argv)
    after = time.time()
    if "--dry-run" in argv:
        assert "restore plan (dry run: nothing restored or written)" in result.stdout
        assert sorted(qs.work.iterdir()) == files
        return
    (output,) = outputs
    restored = rows(qs.work / output)
    if "--at" in argv:
        assert argv[argv.index("--at") + 1] == f"{AT_SECONDS_AGO}s ago"
        # The last transaction committed at or before the instant (now - 10 s).
        assert restored, "the instant is after the application's first commits"
        assert restored == rows(qs.db, f"WHERE id <= {restored[-1][0]}")  # a prefix, row by row
        assert restored[-1][1] <= after - AT_SECONDS_AGO
        later = rows(qs.db, f"WHERE id > {restored[-1][0]}")
        assert later, "the instant is before the application's last commits"
        assert later[0][1] > before - AT_SECONDS_AGO - COMMIT_TIME_SLACK
    else:
        assert restored == rows(qs.db)  # the latest state: the live database, row by row
        assert len(restored) > 100


@pytest.mark.servers
def test_the_quick_start_works_as_written(seaweedfs_server, tmp_path):
    commands = quick_start_commands()
    qs = QuickStart(tmp_path, seaweedfs_server.create_bucket(), seaweedfs_server.endpoint)
    try:
        for argv in commands:
            follow(qs, argv)
        qs.stop()
    finally:
        qs.kill()
    assert qs.exported == S3_VARIABLES
    # Everything but the terminal UI ran, in the README's order.
    assert qs.ran == [shlex.join(argv) for argv in commands if argv != ["litetool", "tui"]]


def follow(qs: QuickStart, argv: list[str]) -> None:
    """Do what one line of the quick start says, and check what it did."""
    if argv == [".", ".venv/bin/activate"]:
        qs.ran.append(shlex.join(argv))
        assert (VENV_BIN / "activate").is_file()
        qs.env["PATH"] = f"{VENV_BIN}{os.pathsep}{qs.env['PATH']}"
        return
    if argv[0] == "export":
        qs.ran.append(shlex.join(argv))
        qs.export(argv[1:])
        return
    assert argv[0] == "litetool", f"a quick start line this test does not know: {argv}"
    command = argv[1]
    if command == "replicate" and "--exec" in argv:
        # The application runs as litetool's child; replicate ends with it.
        qs.stop()
        qs.run(argv)
        check_replica(qs, qs.backups.as_uri())
    elif command == "replicate":
        url = qs.substitute(argv)[3]
        s3 = url.startswith("s3://")
        if s3:
            assert "?" not in url, "the S3 replica is configured by the environment only"
            assert qs.exported >= S3_VARIABLES
        qs.stop()
        qs.start_application(5 if s3 else FIRST_RUN_SECONDS)
        qs.start(argv)
        qs.wait_logged(r"event=snapshot")
        if s3:
            qs.wait_logged(r"endpoint=\"[^\"]* \(AWS_ENDPOINT_URL\)\"")
    elif command in ("generations", "segments"):
        qs.stop()
        result = qs.run(argv)
        if "--json" in argv:
            segments = json.loads(result.stdout)
            assert segments and max(s["last_txid"] for s in segments) > 100
        else:
            assert "first run" in result.stdout
    elif command == "restore":
        qs.stop()
        check_restore(qs, argv)
    elif command == "config":
        qs.stop()
        qs.run(argv)
        assert (qs.work / "litetool.toml").is_file()
    elif command == "daemon":
        qs.stop()
        qs.start_application(3)
        # The starter config serves /metrics on 127.0.0.1:9717; another run of the
        # suite may hold that port, so this one takes a free port (env override).
        qs.start(argv, env={"LITETOOL_METRICS__ADDR": "127.0.0.1:0"})
        qs.stop()
        check_replica(qs, qs.backups.as_uri())
    elif command == "tui":
        qs.stop()  # needs a terminal: tests/tui drive it headless
    else:
        raise AssertionError(f"a quick start command this test does not know: {argv}")


def check_replica(qs: QuickStart, url: str) -> None:
    """The replica holds the live database (a restore of the latest state)."""
    out = qs.work.parent / f"check-{time.monotonic_ns()}.db"
    subprocess.run(
        [str(VENV_BIN / "litetool"), "restore", "-o", str(out), url],
        env=qs.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert rows(out) == rows(qs.db)
