"""Replicate to an S3 API (moto) with the daemon, restore from the config file."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from restore_history import run_writer, start_daemon, stop_daemon, wait_for
from restore_writer import SCHEMA, content_checksum

from litetool.cli import main
from litetool.errors import NoBackupFound
from litetool.restore import load_candidates
from litetool.storage import Replica


def toml_value(value):
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def has_generation(backend) -> bool:
    replica = Replica.open(backend.url, backend.options)
    try:
        return bool(asyncio.run(load_candidates([replica])))
    except NoBackupFound:
        return False


@pytest.mark.servers
def test_restore_from_s3_through_the_config(moto_bucket, tmp_path, capsys):
    db = tmp_path / "app.db"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA:
        connection.execute(statement)
    connection.execute("INSERT INTO meta(id, k) VALUES (1, 0)")
    connection.close()
    options = "".join(
        f"{key.replace('_', '-')} = {toml_value(value)}\n"
        for key, value in moto_bucket.options.items()
    )
    config = tmp_path / "litetool.toml"
    config.write_text(
        f'[[databases]]\npath = "{db}"\n'
        f'[[databases.replicas]]\nurl = "{moto_bucket.url}"\nname = "s3"\n'
        f'sync-interval = "0s"\n{options}'
    )
    log = tmp_path / "writer.jsonl"
    daemon = start_daemon(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: has_generation(moto_bucket), "the first generation on S3")
        run_writer(db, log, 1, 40)
    finally:
        stop_daemon(daemon)
    entries = {entry["k"]: entry for entry in map(json.loads, log.read_text().splitlines())}

    out = tmp_path / "restored" / "latest.db"
    out.parent.mkdir()
    code = main(["restore", str(db), "--config", str(config), "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "from replica s3 (s3://" in stdout
    with sqlite3.connect(f"file:{out}?mode=ro", uri=True) as restored:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert content_checksum(restored) == entries[40]["checksum"]

    middle = tmp_path / "restored" / "txid-17.db"
    code = main(["restore", str(db), "--config", str(config), "-o", str(middle), "--txid", "17"])
    assert code == 0, capsys.readouterr().err
    with sqlite3.connect(f"file:{middle}?mode=ro", uri=True) as restored:
        assert content_checksum(restored) == entries[17]["checksum"]
