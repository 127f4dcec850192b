"""The application in the restore acceptance test: a separate process writing a database.

Run as ``python restore_writer.py DB LOG FIRST_K COUNT SEED``. It commits
COUNT transactions (numbered FIRST_K, FIRST_K + 1, ...) of random inserts
(from a few bytes to multi-page overflow blobs), updates and deletes, with a
mass delete and then a VACUUM now and then (the file shrinks) and a large
transaction now and then. Each is exactly one commit, so litetool's txids
follow the writer's numbering.
After each commit it appends one JSON line to LOG: ``k``, the wall time right
after COMMIT returned (``time_us``), the checksum of the whole table content
(``checksum``) and the pause it then takes (``pause``): most commits follow
each other at once, some are followed by a pause of 0.3 to 0.5 s, so that a
restore instant can be picked well inside a quiet moment.

Imported by the test (as ``restore_writer``) for :func:`content_checksum`.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import sys
import time

SCHEMA = (
    "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, data BLOB NOT NULL)",
    "CREATE INDEX t_grp ON t(grp)",
    "CREATE TABLE meta(id INTEGER PRIMARY KEY, k INTEGER NOT NULL)",
)


def content_checksum(connection: sqlite3.Connection) -> str:
    """SHA-256 over every row of ``t`` in id order (ids, groups, lengths and bytes) and
    the transaction number kept in ``meta``."""
    digest = hashlib.sha256()
    for (k,) in connection.execute("SELECT k FROM meta ORDER BY id"):
        digest.update(f"meta:{k}:".encode())
    for row_id, group, data in connection.execute("SELECT id, grp, data FROM t ORDER BY id"):
        digest.update(f"{row_id}:{group}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def _transaction(connection: sqlite3.Connection, rng: random.Random, k: int) -> None:
    """Exactly one committed transaction that changes at least one page."""
    (free_pages,) = connection.execute("PRAGMA freelist_count").fetchone()
    if k % 61 == 1 and free_pages > 0:
        connection.execute("VACUUM")  # its own transaction: the file shrinks
        return
    connection.execute("BEGIN IMMEDIATE")
    # Every transaction writes meta, so none is empty (an empty one writes no frame).
    connection.execute("INSERT OR REPLACE INTO meta(id, k) VALUES (1, ?)", (k,))
    if k % 61 == 0:
        connection.execute("DELETE FROM t WHERE grp IN (1, 2, 3)")
    operations = 200 if k % 47 == 0 else rng.randint(1, 5)
    (top,) = connection.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()
    for _ in range(operations):
        choice = rng.random()
        if choice < 0.65 or top == 0:
            size = rng.choice((8, 100, 700, 3000, 9000, 20000))
            connection.execute(
                "INSERT INTO t(grp, data) VALUES (?, ?)", (rng.randrange(10), rng.randbytes(size))
            )
            top += 1
        elif choice < 0.85:
            data = rng.randbytes(rng.choice((10, 500, 5000)))
            connection.execute(
                "UPDATE t SET data = ?, grp = ? WHERE id = ?",
                (data, rng.randrange(10), rng.randint(1, top)),
            )
        else:
            connection.execute("DELETE FROM t WHERE id = ?", (rng.randint(1, top),))
    connection.execute("COMMIT")


def main(db: str, log_path: str, first_k: int, count: int, seed: int) -> None:
    rng = random.Random(seed)
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=10000")
    with open(log_path, "a") as log:
        for k in range(first_k, first_k + count):
            start_us = time.time_ns() // 1000
            _transaction(connection, rng, k)
            time_us = time.time_ns() // 1000
            checksum = content_checksum(connection)
            pause = rng.uniform(0.3, 0.5) if rng.random() < 0.2 else 0.0
            entry = {
                "k": k,
                "start_us": start_us,
                "time_us": time_us,
                "checksum": checksum,
                "pause": pause,
            }
            log.write(json.dumps(entry) + "\n")
            log.flush()
            time.sleep(pause or rng.uniform(0, 0.004))
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
