"""Validation compares a real restore with the live image at the same txid."""

from __future__ import annotations

import asyncio
import os
import time

from test_replication import Running, database_config, make_db


def validate(running):
    future = asyncio.run_coroutine_threadsafe(running.replication.validate(), running.loop)
    return future.result(timeout=120)


def test_validation_passes_while_writing_and_catches_tampering(tmp_path):
    db = tmp_path / "app.db"
    app = make_db(db)
    for _ in range(50):
        app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(3000),))
    url = f"memory://validation-{time.time_ns()}"
    config = database_config(db, [{"url": url, "name": "m", "sync-interval": "100ms"}])
    with Running(config) as running:
        running.wait_published("m", 0)
        for _ in range(100):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(500),))
        [result] = validate(running)
        assert result.ok, result
        assert result.txid >= 1 and result.live_digest == result.restored_digest
        # Corrupt a page of the database file behind SQLite's back: a page the
        # WAL does not cover, so the live image changes but the history does not.
        app.execute("PRAGMA wal_checkpoint(PASSIVE)")
        with open(db, "r+b") as handle:
            handle.seek(3 * 4096 + 100)
            handle.write(b"\xff" * 16)
        app.execute("INSERT INTO t(data) VALUES (?)", (b"x",))
        [result] = validate(running)
        assert not result.ok and "MISMATCH" in result.message
    app.close()
