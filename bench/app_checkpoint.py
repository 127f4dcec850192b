"""How long does an application's own checkpoint wait for the replicator?

Every replicator holds a read transaction on the database so that SQLite
cannot overwrite WAL frames it has not copied. An application that runs
``PRAGMA wal_checkpoint(TRUNCATE)`` (or RESTART, or FULL) waits for every
reader, up to its busy timeout, holding SQLite's write lock meanwhile, so
its writers wait too. This measures that wait for litetool next to
Litestream 0.3.13 and the latest, on the same workload in the same run:

1. a fresh database with 2000 rows; the replicator starts and catches up;
2. per round, the application (its own process, busy timeout 30 s) commits
   ``--commits`` transactions, waits ``--idle`` seconds (the replicator is
   idle, holding its reader), then runs ``PRAGMA wal_checkpoint(MODE)`` and
   logs how long it took and whether it came back busy (the WAL not
   truncated);
3. ``--rounds`` rounds per tool; the latest restore is compared with the
   database (row count).

    .venv/bin/python bench/app_checkpoint.py [--tools litetool,ls3,ls5] [--rounds 3]
        [--mode TRUNCATE] [--idle 1.5] [--commits 50]

Printed per tool: the checkpoint's seconds (median and max of the rounds),
how many rounds came back busy, and whether the restore holds every row. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replicator import Replicator, restore
from tools import litestream_latest, litestream_v3, litetool

APP = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
commits, idle, mode = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
for i in range(commits):
    db.execute("INSERT INTO t(v) VALUES (?)", ("x" * 200,))
time.sleep(idle)
started = time.monotonic()
busy = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
print(time.monotonic() - started, busy)
db.close()
"""


def run_tool(tool, root: Path, args) -> dict:
    db, replica, log = root / "app.db", root / "replica", root / "tool.log"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t(v) VALUES (?)", [("y" * 200,)] * 2000)
    conn.commit()
    conn.close()
    replicator = Replicator(tool, db, replica, log)
    replicator.start()
    seconds, busy = [], 0
    try:
        replicator.wait_restorable(root, timeout=60)
        for _ in range(args.rounds):
            out = subprocess.run(
                [sys.executable, "-c", APP, str(db), str(args.commits), str(args.idle), args.mode],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout.split()
            seconds.append(float(out[0]))
            busy += int(out[1])
        time.sleep(2.0)
    finally:
        code = replicator.stop()
    restored = root / "restored.db"
    result = restore(tool, replica, restored, verify=True)
    conn = sqlite3.connect(db)
    live = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    return {
        "tool": tool.name,
        "version": tool.version,
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "busy_rounds": busy,
        "rounds": len(seconds),
        "restored_rows": result.count if result.ok else None,
        "live_rows": live,
        "exit_code": code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", default="litetool,ls3,ls5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", default="TRUNCATE", choices=("FULL", "RESTART", "TRUNCATE"))
    parser.add_argument("--idle", type=float, default=1.5)
    parser.add_argument("--commits", type=int, default=50)
    args = parser.parse_args()
    makers = {"litetool": lambda: litetool("1s"), "ls3": litestream_v3, "ls5": litestream_latest}
    results = []
    print(f"{'tool':<10} {'version':<10} {'median s':>9} {'max s':>7} {'busy':>5} {'restore':>14}")
    for name in args.tools.split(","):
        tool = makers[name]()
        root = Path(tempfile.mkdtemp(prefix=f"app-ckpt-{name}-"))
        try:
            r = run_tool(tool, root, args)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        results.append(r)
        rows = f"{r['restored_rows']}/{r['live_rows']}"
        print(
            f"{r['tool']:<10} {r['version']:<10} {r['median_s']:>9} {r['max_s']:>7} "
            f"{r['busy_rounds']:>2}/{r['rounds']:<2} {rows:>14}",
            flush=True,
        )
    print(json.dumps({"bench": "app_checkpoint", "mode": args.mode, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
