"""The benchmark workload: one writer process appending rows to ``t``.

Runs as its own process (like an application next to the replicator):

    python bench/writer.py --db DB --out PREFIX [--rate TX_PER_S] \
        (--seconds S | --transactions N) [--rows-per-tx 1] [--payload random1k]

Schema ``t(id INTEGER PRIMARY KEY, ts REAL, data BLOB)``, WAL mode,
``synchronous=NORMAL``, ``busy_timeout`` 10 s, default autocheckpoint.
Transaction ``i`` inserts the rows with the next ids, so after a restore
``max(id)`` says exactly which transactions it holds.

Payloads:

- ``random1k``: 1 KiB of ``os.urandom`` (the replication workload);
- ``mixed1300``: 650 random bytes + 650 bytes of word-like text, seeded, so
  every build of a restore scenario holds the same bytes (the restore
  workload; partly compressible).

``--rate 0`` (the default) writes as fast as it can; otherwise commits are
paced to the given rate. The writer records, per transaction, the wall time
right after the commit returned (``PREFIX.times``, float64) and the commit
latency, i.e. the time of the whole transaction (``PREFIX.lat``, float64;
a single-row transaction is one autocommit INSERT), and counts
the WAL bytes it caused exactly: after every commit it reads ``mxFrame`` from
the ``-shm`` wal-index header and adds the delta (after a WAL restart, the
new ``mxFrame``). A summary goes to ``PREFIX.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import struct
import time
from array import array
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, ts REAL, data BLOB)"
WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
# wal-index header (native byte order): szPage u16 at offset 14, mxFrame u32 at 16.
SHM_PAGE_SIZE_OFFSET = 14
SHM_MX_FRAME_OFFSET = 16


def connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def create_database(db_path: Path) -> None:
    """An empty database with the benchmark table, in WAL mode."""
    conn = connect(db_path)
    conn.execute(SCHEMA)
    conn.close()


class ShmFrameCounter:
    """Counts WAL frames appended, from the wal-index header in ``-shm``."""

    def __init__(self, db_path: Path) -> None:
        self.fd = os.open(f"{db_path}-shm", os.O_RDONLY)
        self.page_size = 0
        self.last = self._mx_frame()
        self.frames = 0
        self.restarts = 0

    def _mx_frame(self) -> int:
        header = os.pread(self.fd, 20, 0)
        size = struct.unpack_from("=H", header, SHM_PAGE_SIZE_OFFSET)[0]
        self.page_size = 65536 if size == 1 else size
        return struct.unpack_from("=I", header, SHM_MX_FRAME_OFFSET)[0]

    def update(self) -> None:
        current = self._mx_frame()
        if current >= self.last:
            self.frames += current - self.last
        else:  # the WAL restarted: everything in it now is new
            self.frames += current
            self.restarts += 1
        self.last = current

    def wal_bytes(self) -> int:
        frame_size = self.page_size + FRAME_HEADER_SIZE
        return self.frames * frame_size + self.restarts * WAL_HEADER_SIZE

    def close(self) -> None:
        os.close(self.fd)


class Payloads:
    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.rng = random.Random(seed)
        if kind == "mixed1300":
            words = [
                "".join(self.rng.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(n))
                for n in (self.rng.randint(2, 9) for _ in range(512))
            ]
            text = " ".join(self.rng.choice(words) for _ in range(200_000)).encode()
            self.text = text
        elif kind != "random1k":
            raise SystemExit(f"unknown payload {kind!r}")

    def next(self) -> bytes:
        if self.kind == "random1k":
            return os.urandom(1024)
        start = self.rng.randrange(len(self.text) - 650)
        return self.rng.randbytes(650) + self.text[start : start + 650]


def run(args: argparse.Namespace) -> dict:
    db_path = Path(args.db)
    conn = connect(db_path)
    conn.execute(SCHEMA)
    first_id = (conn.execute("SELECT max(id) FROM t").fetchone()[0] or 0) + 1
    counter = ShmFrameCounter(db_path)
    payloads = Payloads(args.payload, args.seed)
    times = array("d")
    latencies = array("d")
    rows = args.rows_per_tx
    next_id = first_id
    limit = args.transactions or 1 << 62
    interval = 1.0 / args.rate if args.rate else 0.0
    perf = time.perf_counter
    wall = time.time
    start_wall = wall()
    start = perf()
    deadline = start + args.seconds if args.seconds else float("inf")
    insert = "INSERT INTO t(id, ts, data) VALUES (?, ?, ?)"
    n = 0
    while n < limit:
        if interval:
            target = start + n * interval
            now = perf()
            if now < target:
                time.sleep(target - now)
        began = perf()
        if began >= deadline:
            break
        if rows == 1:  # autocommit: the statement is the transaction
            conn.execute(insert, (next_id, wall(), payloads.next()))
        else:
            batch = [(next_id + k, wall(), payloads.next()) for k in range(rows)]
            began = perf()
            conn.execute("BEGIN")
            conn.executemany(insert, batch)
            conn.execute("COMMIT")
        ended = perf()
        times.append(wall())
        latencies.append(ended - began)
        counter.update()
        next_id += rows
        n += 1
    elapsed = perf() - start
    end_wall = wall()
    counter.close()
    conn.close()
    out = Path(args.out)
    out.with_suffix(".times").write_bytes(times.tobytes())
    out.with_suffix(".lat").write_bytes(latencies.tobytes())
    summary = {
        "transactions": n,
        "rows_per_tx": rows,
        "first_id": first_id,
        "last_id": next_id - 1,
        "start_wall": start_wall,
        "end_wall": end_wall,
        "elapsed_s": elapsed,
        "tx_per_s": n / elapsed if elapsed else 0.0,
        "wal_frames": counter.frames,
        "wal_restarts": counter.restarts,
        "wal_bytes": counter.wal_bytes(),
        "page_size": counter.page_size,
    }
    out.with_suffix(".json").write_text(json.dumps(summary))
    return summary


def load_result(prefix: Path) -> tuple[dict, array, array]:
    """What a finished writer left: summary, commit wall times, commit latencies."""
    summary = json.loads(prefix.with_suffix(".json").read_text())
    times = array("d")
    times.frombytes(prefix.with_suffix(".times").read_bytes())
    latencies = array("d")
    latencies.frombytes(prefix.with_suffix(".lat").read_bytes())
    return summary, times, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--out", required=True, help="prefix of the result files")
    parser.add_argument("--rate", type=float, default=0.0, help="tx/s, 0 = as fast as possible")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--transactions", type=int, default=0)
    parser.add_argument("--rows-per-tx", type=int, default=1)
    parser.add_argument("--payload", default="random1k", choices=["random1k", "mixed1300"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.seconds and not args.transactions:
        parser.error("give --seconds or --transactions")
    run(args)


if __name__ == "__main__":
    main()
