"""Validation compares a real restore with the live image at the same txid."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from test_replication import Running, database_config, make_db

from litetool.wal.reader import decode_wal


def validate(running):
    future = asyncio.run_coroutine_threadsafe(running.replication.validate(), running.loop)
    return future.result(timeout=120)


def test_validation_passes_while_writing_and_catches_tampering(tmp_path):
    db = tmp_path / "app.db"
    app = make_db(db)
    for _ in range(50):
        app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(3000),))
    # Those pages now live in the database file only (no WAL frame covers them).
    app.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    url = f"memory://validation-{time.time_ns()}"
    config = database_config(db, [{"url": url, "name": "m", "sync-interval": "100ms"}])
    with Running(config) as running:
        running.wait_published("m", 0)
        for _ in range(100):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(500),))
        [result] = validate(running)
        assert result.ok, result
        assert result.txid >= 1 and result.live_digest == result.restored_digest
        # Corrupt a page of the database file behind SQLite's back. Pick one that
        # no WAL frame covers, so the live image reads it from the file while
        # the replica's history still has the original.
        app.execute("INSERT INTO t(data) VALUES (?)", (b"x",))
        wal = decode_wal(Path(f"{db}-wal").read_bytes())
        in_wal = {p for txn in wal.transactions for p in txn.page_numbers}
        pages = os.path.getsize(db) // 4096
        victim = next(p for p in range(2, pages + 1) if p not in in_wal)
        with open(db, "r+b") as handle:
            handle.seek((victim - 1) * 4096 + 100)
            handle.write(b"\xff" * 16)
        [result] = validate(running)
        assert not result.ok and "MISMATCH" in result.message
    app.close()
