"""``litetool replicate`` when a replica cannot work, with real S3 servers on
127.0.0.1 configured by the AWS_* variables only.

- The first answer proves the replica unusable (wrong keys, no bucket): one
  clear error and a non-zero exit at start, instead of retrying forever.
- No credentials at all (instance metadata disabled): the same, before the
  database is touched and before any request.
- A misconfigured replica next to one that works does not stop it: it is
  retried, its error logged once.
- A store that is only down at start is waited for, and replicated to once
  it answers.
- A replica that worked and then stops working (its bucket deleted) is
  retried, and the error is logged once, not once per attempt.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, unique_name

pytestmark = pytest.mark.servers

LITETOOL = str(Path(sys.executable).parent / "litetool")
WRONG_SECRET = "not-the-secret-the-store-knows"


def make_db(path: Path, rows: int = 20) -> None:
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        connection.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}",) for i in range(rows)])


def aws(endpoint: str, secret: str = S3_SECRET_ACCESS_KEY) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": S3_REGION,
    }


class Replicate:
    """``litetool replicate`` in a subprocess; its log goes to a file."""

    def __init__(self, tmp_path: Path, db: Path, url: str, env: dict[str, str], *args: str):
        self.log_path = tmp_path / f"replicate-{unique_name()}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [LITETOOL, "replicate", str(db), url, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=tmp_path,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def wait_for(self, pattern: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log):
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.log}"
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.log}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def replicate(tmp_path):
    started: list[Replicate] = []

    def start(db: Path, url: str, env: dict[str, str], *args: str) -> Replicate:
        started.append(Replicate(tmp_path, db, url, env, *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def test_wrong_keys_end_the_start_with_one_error(seaweedfs_server, tmp_path, replicate):
    # Before: "sync failed" every 1, 2, 4 ... 60 s, forever.
    db = tmp_path / "app.db"
    make_db(db)
    url = f"s3://{seaweedfs_server.create_bucket()}/app"
    process = replicate(db, url, aws(seaweedfs_server.endpoint, WRONG_SECRET))
    assert process.wait() == 1, process.log
    lines = process.log.splitlines()
    assert lines[-1].startswith(
        f"error: put litetool-replica.json on {url}: permission denied (HTTP 403 "
    )
    assert len([line for line in lines if "replica unusable" in line]) == 1
    assert "sync failed" not in process.log
    assert WRONG_SECRET not in process.log


def test_a_missing_bucket_ends_the_start_with_one_error(moto_server, tmp_path, replicate):
    db = tmp_path / "app.db"
    make_db(db)
    bucket = unique_name("missing")
    process = replicate(db, f"s3://{bucket}/app", aws(moto_server.endpoint))
    assert process.wait() == 1, process.log
    last = process.log.splitlines()[-1]
    assert f"the bucket {bucket} does not exist (NoSuchBucket)" in last
    assert "hint: create it, or correct the replica URL" in last


def test_no_credentials_end_the_start_before_the_database_is_touched(tmp_path, replicate):
    db = tmp_path / "app.db"
    make_db(db)
    before = sorted(os.listdir(tmp_path))
    # The suite sets AWS_EC2_METADATA_DISABLED=true; no key, no profile.
    process = replicate(db, "s3://bucket/app", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert process.wait() == 2, process.log
    assert process.log.splitlines() == [
        "error: s3://bucket/app: no S3 credentials found (set AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared credentials file, or "
        "access-key-id/secret-access-key in the config file) (hint: instance metadata is "
        "not asked, as AWS_EC2_METADATA_DISABLED=true says)"
    ]
    after = sorted(name for name in os.listdir(tmp_path) if not name.startswith("replicate-"))
    assert after == before  # no spool directory, nothing beside the database


def test_a_file_replica_whose_path_runs_through_a_file_ends_the_start_with_one_error(
    tmp_path, replicate
):
    # Before: "sync failed ... OSError: Not a directory (os error 20)" every
    # 1, 2, 4 ... 60 s, forever.
    db = tmp_path / "app.db"
    make_db(db)
    (tmp_path / "a-file").write_text("not a directory")
    url = (tmp_path / "a-file" / "replica").as_uri()
    process = replicate(db, url, {})
    assert process.wait() == 2, process.log
    assert process.log.splitlines()[-1] == f"error: cannot open {url}: Not a directory"
    assert "sync failed" not in process.log and "Traceback" not in process.log
    assert (tmp_path / "a-file").read_text() == "not a directory"


def test_a_misconfigured_replica_next_to_a_working_one_does_not_stop_it(
    moto_server, tmp_path, replicate
):
    db = tmp_path / "app.db"
    make_db(db)
    bucket = unique_name("missing")
    local = (tmp_path / "backup").as_uri()
    process = replicate(
        db, local, aws(moto_server.endpoint), f"s3://{bucket}/app", "--log-level", "debug"
    )
    process.wait_for(r"event=snapshot .*replica=r0")
    process.wait_for(r"level=debug event=\"sync failed\".* replica=r1 .*attempt=2")
    assert process.stop() == 0, process.log  # the local replica has every transaction
    failures = [line for line in process.log.splitlines() if "replica=r1" in line]
    reported = [line for line in failures if "level=error" in line]
    assert len(reported) == 1 and "NoSuchBucket" in reported[0], failures
    assert "replica unusable" not in process.log


def test_a_store_down_at_start_is_waited_for(moto_server, tmp_path, replicate):
    db = tmp_path / "app.db"
    make_db(db)
    bucket = moto_server.create_bucket()
    moto_server.halt()
    try:
        process = replicate(db, f"s3://{bucket}/app", aws(moto_server.endpoint))
        process.wait_for(r"sync failed.*connection refused")
    finally:
        moto_server.resume()
    process.wait_for(r"event=snapshot .*replica=replica", timeout=60)
    assert process.stop() == 0, process.log
    keys = moto_server.boto3_client().list_objects_v2(Bucket=bucket)["Contents"]
    assert any(item["Key"] == "app/litetool-replica.json" for item in keys)


WRITER = r"""
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
connection.execute("PRAGMA busy_timeout=30000")
while True:
    connection.execute("INSERT INTO t(v) VALUES ('more')")
    time.sleep(0.05)
"""


def test_a_replica_that_breaks_later_is_retried_and_its_error_logged_once(
    moto_server, tmp_path, replicate
):
    db = tmp_path / "app.db"
    make_db(db)
    bucket = moto_server.create_bucket()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)])
    try:
        process = replicate(
            db, f"s3://{bucket}/app", aws(moto_server.endpoint), "--log-level", "debug"
        )
        process.wait_for(r"event=synced")
        client = moto_server.boto3_client()
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
        # Backoff 1 s, then 2 s: the third attempt comes about 3 s after the first.
        process.wait_for(r"level=debug event=\"sync failed\".* attempt=3", timeout=30)
        assert process.process.poll() is None  # retried, not given up: it worked before
        failures = [line for line in process.log.splitlines() if 'event="sync failed"' in line]
        reported = [line for line in failures if "level=error" in line]
        assert len(failures) >= 3 and len(reported) == 1, failures
        assert "NoSuchBucket" in reported[0]
    finally:
        writer.kill()
        writer.wait()
    assert process.stop() == 3  # transactions that reached no replica
