"""How true are recorded commit times? Error per rate, against the writer's own clock.

``restore --at T`` is only as good as the commit time litetool records for each
transaction. For each rate, from one commit every 5 s to 1000 tx/s:

1. a fresh database is created and ``litetool replicate`` started on it
   (sync interval 0s, a local file replica);
2. a writer process commits one row per transaction on a fixed schedule and
   logs, for each, the wall clock right after COMMIT returned;
3. litetool is stopped (final sync) and every transaction's recorded commit
   time is read back from the replica's segments.

The error is recorded time minus the writer's time (txid k is the writer's
k-th commit). It can be a little negative: SQLite publishes a commit in the
wal-index a moment before COMMIT returns, and the writer reads its clock
after. Printed per rate: p50, p99, max and min in milliseconds, and the CPU
litetool used per second of wall time (idle costs nothing either way).

    .venv/bin/python bench/commit_time.py            # every rate (about 3 minutes)
    .venv/bin/python bench/commit_time.py --quick    # fewer commits per rate

Target (docs/benchmarks.md): p99 <= 5 ms and max <= 20 ms at every rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from litetool.restore import load_candidates  # noqa: E402
from litetool.storage import Replica  # noqa: E402

WRITER = r"""
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA busy_timeout=10000")
rate, count = float(sys.argv[2]), int(sys.argv[3])
out = open(sys.argv[4], "w")
start = time.time() + 0.2
for k in range(1, count + 1):
    due = start + (k - 1) / rate
    delay = due - time.time()
    if delay > 0:
        time.sleep(delay)
    db.execute("INSERT INTO t(k, v) VALUES (?, ?)", (k, "x" * 100))
    out.write(f"{k} {int(time.time() * 1e6)}\n")
out.close()
db.close()
"""

# (commits per second, commits)
RATES = [(0.2, 12), (1.0, 20), (5.0, 50), (20.0, 200), (200.0, 2000), (1000.0, 10000)]
QUICK = [(0.2, 4), (1.0, 8), (5.0, 20), (20.0, 80), (200.0, 600), (1000.0, 3000)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_status(log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and '"snapshot"' in log.read_text():
            return
        time.sleep(0.05)
    raise SystemExit(f"litetool did not start: {log.read_text() if log.exists() else ''}")


def run_rate(root: Path, rate: float, count: int) -> dict:
    db, replica, log, times = root / "app.db", root / "replica", root / "lt.log", root / "w.txt"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INT, v TEXT)")
    conn.close()
    url = replica.as_uri()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "litetool", "replicate", str(db), url,
         "--sync-interval", "0s", "--log-format", "json"],
        stderr=open(log, "w"),  # noqa: SIM115 - closed with the process
        cwd=REPO,
    )  # fmt: skip
    try:
        wait_status(log)
        time.sleep(0.5)
        cpu0, wall0 = cpu_seconds(daemon.pid), time.monotonic()
        subprocess.run(
            [sys.executable, "-c", WRITER, str(db), str(rate), str(count), str(times)], check=True
        )
        time.sleep(0.3)
        cpu = cpu_seconds(daemon.pid) - cpu0
        wall = time.monotonic() - wall0
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=60)
    written = {}
    for line in times.read_text().split("\n"):
        if line:
            k, us = line.split()
            written[int(k)] = int(us)
    store = Replica.open(url, name="local")
    candidates = asyncio.run(load_candidates([store]))
    (_, index) = candidates[-1]
    index = asyncio.run(store.fetch_details(index))
    errors = []
    for txid in range(index.first_txid + 1, index.last_txid + 1):
        k = txid - index.first_txid
        if k in written:
            errors.append((index.commit_time_us(txid) - written[k]) / 1000)
    if len(errors) != count:
        raise SystemExit(f"rate {rate}: {len(errors)} transactions recorded, {count} written")
    errors.sort()
    return {
        "rate": rate,
        "commits": count,
        "p50_ms": round(statistics.median(errors), 2),
        "p99_ms": round(errors[min(len(errors) - 1, int(len(errors) * 0.99))], 2),
        "max_ms": round(errors[-1], 2),
        "min_ms": round(errors[0], 2),
        "over_5ms": sum(e > 5 for e in errors),
        "cpu_per_s": round(cpu / wall, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer commits per rate")
    parser.add_argument("--rates", help="comma-separated rates (commits per second)")
    args = parser.parse_args()
    plan = QUICK if args.quick else RATES
    if args.rates:
        wanted = {float(r) for r in args.rates.split(",")}
        plan = [p for p in plan if p[0] in wanted]
    results = []
    print(f"{'rate tx/s':>10} {'commits':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'min ms':>8} {'>5ms':>6} {'cpu/s':>7}")  # fmt: skip
    for rate, count in plan:
        with tempfile.TemporaryDirectory(prefix="commit-time-") as tmp:
            r = run_rate(Path(tmp), rate, count)
        results.append(r)
        print(f"{r['rate']:>10g} {r['commits']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['max_ms']:>8} {r['min_ms']:>8} {r['over_5ms']:>6} {r['cpu_per_s']:>7}",
              flush=True)  # fmt: skip
    print(json.dumps({"bench": "commit_time", "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
