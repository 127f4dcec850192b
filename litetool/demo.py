"""``python -m litetool.demo``: replicate a demo database to a local file replica.

The README's first command. No cloud account, nothing outside ``--dir``:

1. create ``<dir>/app.db`` (WAL mode) and start ``litetool replicate`` on it
   with a ``file://`` replica in ``<dir>/replica``;
2. a small writer process commits orders for a few seconds, with a half-second
   pause in the middle;
3. stop litetool with SIGINT (final sync), list what can be restored,
   restore the latest state and a point in the middle, and compare them with
   what the writer recorded.

Exits non-zero if any restored content differs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from litetool.wording import plural

WRITER = r"""
import hashlib, json, random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA busy_timeout=10000")
db.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, item TEXT, qty INT, ts REAL)")
log = open(sys.argv[2], "w")
start = time.time()
deadline = start + float(sys.argv[3])
rng = random.Random(7)
digest = hashlib.sha256()
n = 0
paused = False
while time.time() < deadline:
    if not paused and time.time() > (start + deadline) / 2:
        paused = True
        time.sleep(0.5)  # a quiet moment in the middle: step 5 restores to it
    n += 1
    item, qty = rng.choice(["apple", "pear", "fig", "kiwi"]), rng.randint(1, 9)
    db.execute("INSERT INTO orders(item, qty, ts) VALUES (?, ?, ?)", (item, qty, time.time()))
    digest.update(f"{n}|{item}|{qty}".encode())
    log.write(json.dumps({"rows": n, "sha": digest.hexdigest(), "time": time.time()}) + "\n")
    time.sleep(0.01)
log.close()
db.close()
"""


def _table_digest(path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise SystemExit(f"demo: {path} failed integrity_check")
        digest = hashlib.sha256()
        rows = conn.execute("SELECT id, item, qty FROM orders ORDER BY id").fetchall()
        for row in rows:
            digest.update(f"{row[0]}|{row[1]}|{row[2]}".encode())
        return len(rows), digest.hexdigest()
    finally:
        conn.close()


def _litetool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litetool", *args], check=check, text=True, capture_output=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m litetool.demo", description=__doc__)
    parser.add_argument("--dir", default="demo", help="working directory (recreated)")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long the writer writes")
    args = parser.parse_args(argv)
    work = Path(args.dir).absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db, replica = work / "app.db", work / "replica"
    url = replica.as_uri()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()

    print(f"1. replicating {db} -> {url}")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "litetool", "replicate", str(db), url, "--sync-interval", "1s"],
        stderr=open(work / "litetool.log", "w"),  # noqa: SIM115 - closed with the process
    )
    time.sleep(0.5)
    print(f"2. writing orders for {args.seconds:.0f}s (a separate process)")
    log = work / "writer.jsonl"
    subprocess.run([sys.executable, "-c", WRITER, str(db), str(log), str(args.seconds)], check=True)
    time.sleep(1.5)
    daemon.send_signal(signal.SIGINT)
    if daemon.wait(timeout=30) != 0:
        print((work / "litetool.log").read_text(), file=sys.stderr)
        raise SystemExit("demo: litetool replicate failed")
    print("3. what can be restored:")
    print("   " + _litetool("generations", url).stdout.replace("\n", "\n   ").rstrip())

    commits = [json.loads(line) for line in log.read_text().splitlines()]
    latest = work / "restored-latest.db"
    result = _litetool("restore", "-o", str(latest), url)
    print("   " + result.stdout.strip().replace("\n", "\n   "))
    rows, sha = _table_digest(latest)
    ok = (rows, sha) == (commits[-1]["rows"], commits[-1]["sha"])
    matches = "matches" if ok else "DIFFERS FROM"
    print(f"4. latest restore: {plural(rows, 'order')}, {matches} the source")

    # The middle of the writer's pause: litetool stamps each transaction with
    # the moment its commit became visible (within a few milliseconds), so an
    # instant between two commits 10 ms apart could fall on either side of a
    # stamp; the pause is 0.5 s.
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(commits)]
    before_pause = max(range(len(gaps)), key=gaps.__getitem__)
    middle = commits[before_pause]
    instant = (middle["time"] + commits[before_pause + 1]["time"]) / 2
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(instant))
    at += f".{int(instant % 1 * 1e6):06d}Z"
    past = work / "restored-past.db"
    result = _litetool("restore", "-o", str(past), "--at", at, url)
    rows_past, sha_past = _table_digest(past)
    ok_past = (rows_past, sha_past) == (middle["rows"], middle["sha"])
    print(
        f"5. restore --at {at}: {plural(rows_past, 'order')}, "
        f"{'matches' if ok_past else 'DIFFERS FROM'} the source at that instant"
    )
    # The litetool this demo ran with (the venv's), not whatever `python` is.
    launcher = Path(sys.executable).with_name("litetool")
    command = str(launcher) if launcher.exists() else f"{sys.executable} -m litetool"
    print(f"\nTry: {command} tui {url}")
    return 0 if ok and ok_past else 1


if __name__ == "__main__":
    raise SystemExit(main())
