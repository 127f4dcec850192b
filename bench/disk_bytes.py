"""Benchmark: where the disk's bytes go while a writer runs at full speed.

    python bench/disk_bytes.py [--seconds 20] [--repeats 1] [--tools litetool]

For the writer alone (``baseline``) and next to each replicator, in the same
run: the bytes the block device wrote during the writer's run and after it
(a ``sync`` at the end flushes what was still dirty), read from
``/proc/diskstats``, next to the WAL bytes the writer caused and the
replicator's own ``write_bytes`` from ``/proc/PID/io`` (its spool, its
replica directory and the checkpoints it runs). The ratio of device bytes to
WAL bytes is what a replicator adds to the application's own disk traffic
(the WAL and its checkpoints); the physical limit is the baseline's ratio.

The run directory is deleted after each run: files kept from one run are
still being written back during the next and slow it down (``--keep`` in
``bench/replication.py`` showed it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import select_tools
from writer import create_database


def _device() -> str:
    """The block device (as /proc/diskstats names it) holding the temp dir."""
    dev = os.stat(tempfile.gettempdir()).st_dev
    major, minor = os.major(dev), os.minor(dev)
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if int(fields[0]) == major and int(fields[1]) == minor:
            return fields[2]
    raise SystemExit(f"no /proc/diskstats entry for device {major}:{minor}")


def _written(device: str) -> int:
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if fields[2] == device:
            return int(fields[9]) * 512  # sectors written
    raise SystemExit(f"device {device} left /proc/diskstats")


def _write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def run_once(tool, seconds: float, root: Path, device: str) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="disk-bytes-", dir=root))
    try:
        db = run_dir / "db" / "bench.db"
        db.parent.mkdir()
        create_database(db)
        subprocess.run(["sync"], check=True)
        replicator = None
        if tool is not None:
            argv = tool.replicate_argv(db, run_dir / "replica")
            replicator = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(1.0)
        before = _written(device)
        writer = [
            sys.executable,
            str(Path(__file__).resolve().parent / "writer.py"),
            "--db", str(db), "--out", str(run_dir / "writer"), "--seconds", str(seconds),
        ]  # fmt: skip
        subprocess.run(writer, check=True, stdout=subprocess.DEVNULL)
        during = _written(device) - before
        own = 0
        if replicator is not None:
            own = _write_bytes(replicator.pid)
            replicator.send_signal(signal.SIGTERM)
            replicator.wait(120)
        subprocess.run(["sync"], check=True)
        total = _written(device) - before
        result = json.loads((run_dir / "writer.json").read_text())
        wal = result["wal_bytes"]
        return {
            "tool": tool.name if tool is not None else "baseline",
            "tx_per_s": result["tx_per_s"],
            "wal_mb": wal / 1e6,
            "device_mb_during": during / 1e6,
            "device_mb_total": total / 1e6,
            "replicator_write_mb": own / 1e6,
            "device_per_wal": total / wal if wal else 0.0,
        }
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tools", default="litetool")
    args = parser.parse_args()
    tools, missing = select_tools([t for t in args.tools.split(",") if t])
    if missing:
        raise SystemExit(f"not available: {', '.join(missing)}")
    root = Path(tempfile.gettempdir())
    device = _device()
    rows = []
    for repeat in range(args.repeats):
        for tool in [None, *tools]:
            name = tool.name if tool is not None else "baseline"
            print(f"[disk bytes] {name} repeat {repeat + 1}/{args.repeats}", file=sys.stderr)
            rows.append(run_once(tool, args.seconds, root, device))
    print("| config | tx/s | WAL MB | device MB during / total | replicator wrote MB "
          "| device bytes per WAL byte |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['tool']} | {row['tx_per_s']:,.0f} | {row['wal_mb']:,.0f} "
            f"| {row['device_mb_during']:,.0f} / {row['device_mb_total']:,.0f} "
            f"| {row['replicator_write_mb']:,.0f} | {row['device_per_wal']:.2f} |"
        )
    print(json.dumps({"bench": "disk_bytes", "argv": sys.argv[1:], "runs": rows}))


if __name__ == "__main__":
    main()
