"""Benchmark: replication lag, writer overhead and replicator cost, next to Litestream.

Measures litetool and Litestream v0.3.13 and the latest v0.5.x on the same
workload in the same run, with ``file://`` replicas on this machine's disk
(the method is the one in shared/reference/litestream-baselines.md):

(a) **lag**: a writer process commits one 1 KiB random row per transaction
    at 200 tx/s for ``--lag-seconds`` and logs each commit's wall time. A
    watcher thread lists the replica every 20 ms and takes a hard-link
    snapshot on every change (bench/replica_watch.py). Afterwards every
    snapshot is restored with the tool's own ``restore`` and ``max(id)``
    says what it held; a commit's lag is the time of the first snapshot that
    restores it minus its commit time. Reported: p50/p90/p99/max, staleness
    (age of the oldest committed but not yet restorable commit, on a 10 ms
    grid), snapshots and objects seen.
    For litetool also the **commit-time accuracy**: the commit time litetool
    recorded for each txid (its index records, read with litetool's storage
    API after the run; txid = row id as above) minus the writer's wall time
    right after that commit returned, in ms: p50/p99/max/min and the fraction
    below zero (the writer's stamp comes after ``commit()`` returns, so
    litetool may stamp first). The segment objects' own per-transaction
    times are checked against the index (``segment_mismatches``).
(b) **overhead**: the writer commits as fast as it can for
    ``--speed-seconds``, without replication (the baseline, in the same run,
    interleaved) and with each tool. Reported: tx/s and its ratio to the
    baseline, commit latency p50/p99/max (the worst stall), replica size at
    writer end, the time until the replica caught up (directory quiet for
    1 s *and* replicator under 0.05 core *and* a hard-link copy restores
    every committed row), the restore of the copy taken right before SIGTERM
    (rows, contiguous, quick_check) and of the replica after SIGTERM.
(c) **cost**: replicator CPU (utime+stime of its process tree, writer start
    -> caught up) per MB of WAL the writer caused (exact, from ``mxFrame`` in
    ``-shm``), next to the CPU ``cp`` spends per MB; peak RSS (``wait4``).

The physical limit is measured in the same run: ``cp`` of a file of random
bytes (warm) and the ``fsync`` after it.

    .venv/bin/python bench/replication.py [--quick] [--repeats N] [--parts lag,overhead]
        [--tools ls3,ls5,litetool,litetool-0s]

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import queue
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from baselines import copy_file, make_random_file
from catchup import wait_caught_up
from cli_batch import CliBatch
from procstat import MachineLoad
from replica_watch import ReplicaWatcher, SnapshotTree
from replicator import Replicator, restore
from report import emit_json, machine, median, percentiles, spread, table
from tools import BENCH_DIR, Tool, select_tools
from writer import create_database, load_result

WRITER = BENCH_DIR / "writer.py"
MB = 1e6


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_writer(db: Path, prefix: Path, *, rate: float, seconds: float):
    subprocess.run(
        [sys.executable, str(WRITER), "--db", str(db), "--out", str(prefix),
         "--rate", str(rate), "--seconds", str(seconds)],
        check=True,
    )
    return load_result(prefix)


def wait_quiet(watcher: ReplicaWatcher, quiet: float, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if watcher.quiet_seconds() >= quiet:
            return True
        time.sleep(0.05)
    return False


# -- (a) lag -----------------------------------------------------------------


def evaluate_snapshots(
    watcher: ReplicaWatcher, tool: Tool, work: Path, *, exhaustive: bool, workers: int
) -> tuple[list[int | None], dict]:
    """max(id) restorable from each snapshot (None: its restore failed).

    ``exhaustive``: every snapshot is restored with ``tool restore``.

    Otherwise, for Litestream, snapshots are restored by bisection: between
    two restored snapshots with the same max(id), the ones in between are
    taken to hold the same (visibility is monotonic; checked on every
    restored one). For litetool, whose sync-interval 0s run yields hundreds
    of snapshots that each add a transaction, every snapshot is asked
    ``litetool generations --json`` (its newest generation's ``last_txid``;
    the harness makes txid = row id: the schema is in the initial snapshot,
    txid 0, and each writer transaction is one txid; a snapshot that only
    adds files under ``objects/`` inherits the previous answer, as restore
    points are defined by index records), and every 32nd snapshot, the
    last, and each one where the generation changes are fully restored; a
    restore whose max(id) differs from that txid is counted in
    ``probe_mismatches`` and the restore wins.
    """
    snaps = watcher.snapshots
    count = len(snaps)
    results = {}
    errors: list[str] = []
    eval_dir = fresh_dir(work / "eval")

    # litetool runs in long-lived workers (bench/cli_batch.py): the
    # interpreter start and imports would otherwise dominate each call.
    runners: queue.Queue[CliBatch | None] = queue.Queue()
    batches = [CliBatch() for _ in range(workers)] if tool.kind == "litetool" else []
    for item in batches or [None] * workers:
        runners.put(item)

    def restore_snapshot(index: int):
        dest = eval_dir / f"s{index}"
        watcher.materialize(index, dest / "replica")
        runner = runners.get()
        try:
            return restore(tool, dest / "replica", dest / "out.db",
                           runner=runner.run if runner else None)
        finally:
            runners.put(runner)
            shutil.rmtree(dest, ignore_errors=True)

    probe_seconds: list[float] = []

    def probe_range(indices: range) -> list[tuple[str, int] | None]:
        tree = SnapshotTree(watcher, eval_dir / f"p{indices.start}")
        url = tree.dest.resolve().as_uri()
        runner = runners.get()
        found = []
        try:
            for index in indices:
                tree.move_to(index)
                snap = watcher.snapshots[index]
                touched = [*snap.added, *snap.removed]
                if found and all(rel.startswith("objects/") for rel in touched):
                    # Only new objects: litetool's restore points are defined by
                    # its index records, so this snapshot restores what the last did.
                    found.append(found[-1])
                    continue
                reply = runner.call(["generations", "--json", url])
                probe_seconds.append(reply["seconds"])
                generations = json.loads(reply["stdout"]) if reply["rc"] == 0 else []
                if not generations:
                    found.append(None)
                    continue
                newest = max(generations, key=lambda g: (g["created"], g["generation"]))
                found.append((newest["generation"], int(newest["last_txid"])))
        finally:
            runners.put(runner)
            shutil.rmtree(tree.dest, ignore_errors=True)
        return found

    eval_started = time.perf_counter()
    probes: dict[int, tuple[str, int] | None] = {}
    coarse = set(range(0, count, 16)) | {count - 1}
    with ThreadPoolExecutor(workers) as pool, contextlib.ExitStack() as stack:
        for worker in batches:
            stack.callback(worker.close)
        if tool.kind == "litetool" and not exhaustive:
            step = -(-count // workers)
            ranges = [range(lo, min(lo + step, count)) for lo in range(0, count, step)]
            probed = [p for chunk in pool.map(probe_range, ranges) for p in chunk]
            probes = dict(enumerate(probed))
            changed = {k for k in range(1, count)
                       if (probes[k] or ("",))[0] != (probes[k - 1] or ("",))[0]}
            batch = sorted(set(range(0, count, 32)) | {count - 1} | changed)
        else:
            batch = list(range(count)) if exhaustive else sorted(coarse)
        while batch:
            for index, result in zip(batch, pool.map(restore_snapshot, batch), strict=True):
                results[index] = result
                if not result.ok:
                    errors.append(f"snapshot {index}: {result.error}")
            batch = []
            if probes:
                break
            for a, b in itertools.pairwise(sorted(results)):
                same = results[a].ok and results[b].ok and results[a].max_id == results[b].max_id
                if b - a > 1 and not same:
                    batch.append((a + b) // 2)
    values: list[int | None] = []
    last: int | None = None
    mismatches = 0
    for index in range(count):
        if index in results:
            last = results[index].max_id if results[index].ok else None
            probe = probes.get(index)
            if probes and (probe[1] if probe else None) != last:
                mismatches += 1
        elif probes:
            probe = probes[index]
            last = probe[1] if probe else None
        values.append(last)
    shutil.rmtree(eval_dir, ignore_errors=True)
    info = {
        "snapshots": count,
        "restored": len(results),
        "probed": len(probes),
        "probe_mismatches": mismatches,
        "probe_seconds_median": median(probe_seconds),
        "failed_restores": len(errors),
        "partial_snapshots": sum(1 for s in snaps if s.partial),
        "restore_seconds_median": median([r.seconds for r in results.values()]),
        "first_errors": errors[:3],
        "evaluation_s": time.perf_counter() - eval_started,
    }
    return values, info


def commit_lags(watcher: ReplicaWatcher, values: list[int | None], summary: dict, times):
    """Per-commit lag (s; inf = never restorable) and how often visibility went backwards."""
    first_id = summary["first_id"]
    n = len(times)
    restorable_at = np.full(n, np.inf)
    reached = first_id - 1
    previous = None
    backwards = 0
    for snap, value in zip(watcher.snapshots, values, strict=True):
        if value is None:
            continue
        if previous is not None and value < previous:
            backwards += 1
        previous = value
        if value > reached:
            lo, hi = reached + 1 - first_id, min(value, first_id + n - 1) + 1 - first_id
            if hi > lo:
                restorable_at[max(lo, 0) : hi] = snap.time
            reached = value
    commit_times = np.asarray(times, dtype=np.float64)
    return restorable_at - commit_times, restorable_at, commit_times, backwards


def staleness(restorable_at: np.ndarray, commit_times: np.ndarray, step: float = 0.01):
    """Age of the oldest committed-but-not-restorable commit, on a ``step`` grid."""
    if len(commit_times) == 0:
        return {}
    grid = np.arange(commit_times[0], commit_times[-1], step)
    oldest = np.searchsorted(restorable_at, grid, side="right")
    valid = oldest < len(commit_times)
    ages = np.zeros(len(grid))
    committed = valid & (commit_times[np.minimum(oldest, len(commit_times) - 1)] <= grid)
    ages[committed] = grid[committed] - commit_times[oldest[committed]]
    return {"mean": float(ages.mean()), "p99": float(np.percentile(ages, 99)),
            "max": float(ages.max())}


# -- (a) commit-time accuracy (litetool) -------------------------------------------------


async def read_commit_times(replica_dir: Path) -> dict:
    """Commit times (µs) litetool recorded per txid, from the oldest generation's segments.

    Index records summarise segments; the per-transaction times are in the segment
    objects, each checked against its summary (a mismatch counts its transactions).
    Only the oldest generation has txid = row id (a new one restarts at txid 0).
    """
    from litetool.errors import CorruptObject
    from litetool.storage import Replica

    replica = Replica.open(replica_dir.resolve().as_uri())
    await replica.ensure_format(create=False)
    infos = await replica.index.list_generations()
    index = await replica.index.load_generation(infos[0].generation)
    times: list[np.ndarray] = []
    mismatches = 0
    for entry in index.segments:
        try:
            detail = await replica.fetch_detail(entry)
        except CorruptObject:
            mismatches += entry.transaction_count  # no time to trust: left out (NaN)
            times.append(np.full(entry.transaction_count, np.nan))
        else:
            times.append(np.asarray(detail.times_us, dtype=np.float64))
    return {
        "generations": len(infos),
        "first_txid": index.snapshots[0].txid + 1,
        "times_us": np.concatenate(times or [np.empty(0)]),
        "segment_mismatches": mismatches,
    }


def commit_time_accuracy(recorded: dict, summary: dict, times) -> dict:
    """Recorded commit time minus the writer's commit-returned time, in ms."""
    assert summary["rows_per_tx"] == 1, "txid = row id needs one row per transaction"
    writer_s = np.asarray(times, dtype=np.float64)
    times_us = recorded["times_us"]
    # Writer transaction i inserted row first_id + i, which is litetool's txid.
    pos = summary["first_id"] + np.arange(len(writer_s)) - recorded["first_txid"]
    covered = (pos >= 0) & (pos < len(times_us))
    diff_ms = (times_us[pos[covered]] / 1e6 - writer_s[covered]) * 1e3
    diff_ms = diff_ms[np.isfinite(diff_ms)]  # segments that failed their check
    out: dict = percentiles(diff_ms, points=(50, 99))
    if len(diff_ms):
        out["min"] = float(diff_ms.min())
        out["negative_fraction"] = float((diff_ms < 0).mean())
    out.update(
        transactions=int(covered.sum()),
        missing=int(len(writer_s) - covered.sum()),
        last_txid=recorded["first_txid"] + len(times_us) - 1,
        generations=recorded["generations"],
        segment_mismatches=recorded["segment_mismatches"],
    )
    return out


def litetool_commit_times(replica_dir: Path, summary: dict, times) -> dict:
    """commit_time_accuracy of a finished run; {"error": ...} if the replica is unreadable."""
    try:
        recorded = asyncio.run(read_commit_times(replica_dir))
    except Exception as exc:  # keep the lag figures of this run
        return {"error": repr(exc)}
    return commit_time_accuracy(recorded, summary, times)


def lag_run(tool: Tool, args: argparse.Namespace, base: Path, rep: int) -> dict:
    run_dir = fresh_dir(base / f"lag-{tool.name}-{rep}")
    db = run_dir / "db" / "bench.db"
    db.parent.mkdir()
    replica = run_dir / "replica"
    create_database(db)
    repl = Replicator(tool, db, replica, run_dir / "replicator.log")
    watcher = ReplicaWatcher(replica, run_dir / "watch", interval=args.scan_interval)
    out: dict = {"tool": tool.name, "repeat": rep}
    load = MachineLoad()
    try:
        repl.start()
        out["ready_s"] = repl.wait_restorable(run_dir)
        watcher.start()
        cpu0 = repl.cpu_seconds()
        summary, times, _ = run_writer(
            db, run_dir / "writer", rate=args.rate, seconds=args.lag_seconds
        )
        out["settled"] = wait_quiet(watcher, args.settle_seconds, args.settle_timeout)
        cpu = repl.cpu_seconds() - cpu0
        out["rss_now_mb"] = repl.rss_bytes()[0] / MB
        watcher.stop()
        out["exit_code"] = repl.stop()
        out["peak_rss_mb"] = repl.max_rss_bytes / MB
    finally:
        if watcher.is_alive():
            watcher.stop()
        repl.stop()
    out["load"] = load.result()
    if out["exit_code"] != 0:
        out["log_tail"] = repl.log_tail()
    if tool.kind == "litetool":
        out["commit_time_ms"] = litetool_commit_times(replica, summary, times)
    values, info = evaluate_snapshots(
        watcher, tool, run_dir, exhaustive=args.exhaustive, workers=args.workers
    )
    lags, restorable_at, commit_times, backwards = commit_lags(watcher, values, summary, times)
    finite = lags[np.isfinite(lags)]
    wal_mb = summary["wal_bytes"] / MB
    out.update(
        commits=len(times),
        tx_per_s=summary["tx_per_s"],
        wal_mb=wal_mb,
        lag_s=percentiles(finite),
        never_restorable=int(len(lags) - len(finite)),
        visibility_backwards=backwards,
        staleness_s=staleness(restorable_at, commit_times),
        objects_seen=watcher.stats.files_seen,
        replica_files_end=len(watcher.current),
        replica_mb_end=watcher.replica_bytes() / MB,
        in_place_changes=watcher.in_place_changes(),
        scan_ms_mean=1000 * watcher.stats.scan_seconds / max(watcher.stats.scans, 1),
        cpu_s=cpu,
        cpu_ms_per_mb_wal=1000 * cpu / wal_mb if wal_mb else None,
        **info,
    )
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


# -- (b)+(c) overhead and cost ----------------------------------------------------


def overhead_run(tool: Tool | None, args: argparse.Namespace, base: Path, rep: int) -> dict:
    label = tool.name if tool else "baseline"
    run_dir = fresh_dir(base / f"speed-{label}-{rep}")
    db = run_dir / "db" / "bench.db"
    db.parent.mkdir()
    create_database(db)
    out: dict = {"config": label, "repeat": rep}
    load = MachineLoad()
    repl = watcher = None
    try:
        if tool is not None:
            repl = Replicator(tool, db, run_dir / "replica", run_dir / "replicator.log")
            watcher = ReplicaWatcher(
                repl.replica_dir, run_dir / "watch", interval=0.05, keep_snapshots=False
            )
            repl.start()
            out["ready_s"] = repl.wait_restorable(run_dir)
            watcher.start()
            cpu0 = repl.cpu_seconds()
        summary, _times, lat = run_writer(
            db, run_dir / "writer", rate=0, seconds=args.speed_seconds
        )
        lat_ms = percentiles(np.asarray(lat) * 1000, points=(50, 99))
        out.update(
            transactions=summary["transactions"],
            tx_per_s=summary["tx_per_s"],
            commit_ms=lat_ms,
            wal_mb=summary["wal_bytes"] / MB,
            wal_restarts=summary["wal_restarts"],
            last_id=summary["last_id"],
        )
        if tool is None:
            out["load"] = load.result()
            return out
        assert repl is not None and watcher is not None
        writer_cpu = repl.cpu_seconds() - cpu0
        out["replica_mb_at_writer_end"] = watcher.replica_bytes() / MB
        out["cores_during_writer"] = writer_cpu / summary["elapsed_s"]
        caught = wait_caught_up(
            repl, watcher, run_dir, summary["last_id"], summary["end_wall"], args.catchup_timeout
        )
        cpu = caught.pop("cpu_at_caught_up") - cpu0
        out.update(caught)
        out["replica_mb_caught_up"] = watcher.replica_bytes() / MB
        out["cpu_s"] = cpu
        out["cpu_ms_per_mb_wal"] = 1000 * cpu / out["wal_mb"] if out["wal_mb"] else None
        out["rss_hwm_mb"] = repl.rss_bytes()[1] / MB
        watcher.stop()
        stop_started = time.time()
        out["exit_code"] = repl.stop()
        out["stop_s"] = time.time() - stop_started
        out["peak_rss_mb"] = repl.max_rss_bytes / MB
        out["load"] = load.result()
        if out["exit_code"] != 0:
            out["log_tail"] = repl.log_tail()
        final = restore(tool, repl.replica_dir, run_dir / "final.db", verify=True)
        out["final_restore_ok"] = final.ok
        out["final_rows"] = final.count if final.ok else None
        out["final_all_rows"] = bool(final.ok and final.count == summary["last_id"]
                                     and final.max_id == summary["last_id"])
        out["final_quick_check"] = final.quick_check
        out["final_restore_s"] = final.seconds
        out["final_error"] = final.error
        out["in_place_changes"] = watcher.in_place_changes()
        return out
    finally:
        if watcher is not None and watcher.is_alive():
            watcher.stop()
        if repl is not None:
            repl.stop()
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


# -- physical limit -------------------------------------------------------------------


def physical_limit(base: Path, size: int, repeats: int) -> dict:
    src = base / "cp-src.bin"
    make_random_file(src, size)
    runs = [copy_file(src, base / "cp-dst.bin") for _ in range(repeats)]
    src.unlink()
    return {
        "bytes": size,
        "cp_s": median([r.seconds for r in runs]),
        "cp_mb_per_s": median([r.mb_per_s for r in runs]),
        "cp_cpu_ms_per_mb": median([1000 * r.cpu_seconds / (size / MB) for r in runs]),
        "fsync_s": median([r.fsync_seconds for r in runs]),
        "fsync_mb_per_s": median([size / MB / r.fsync_seconds for r in runs if r.fsync_seconds]),
    }


# -- tables ---------------------------------------------------------------------------


def fmt(value, pattern="{:.3g}") -> str:
    return "-" if value is None else pattern.format(value)


def summarize_lag(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]

    def med(path):
        vals = []
        for r in ok:
            v = r
            for key in path:
                v = v.get(key) if isinstance(v, dict) else None
            vals.append(v)
        return median(vals)

    return {
        "repeats": len(runs),
        "errors": [r["error"] for r in runs if "error" in r],
        "lag_p50_s": med(["lag_s", "p50"]),
        "lag_p90_s": med(["lag_s", "p90"]),
        "lag_p99_s": med(["lag_s", "p99"]),
        "lag_max_s": med(["lag_s", "max"]),
        "staleness_mean_s": med(["staleness_s", "mean"]),
        "staleness_p99_s": med(["staleness_s", "p99"]),
        "never_restorable": max([r["never_restorable"] for r in ok], default=None),
        "visibility_backwards": max([r["visibility_backwards"] for r in ok], default=None),
        "objects_seen": med(["objects_seen"]),
        "cpu_ms_per_mb_wal": med(["cpu_ms_per_mb_wal"]),
        "peak_rss_mb": med(["peak_rss_mb"]),
        "commit_time_p50_ms": med(["commit_time_ms", "p50"]),
        "commit_time_p99_ms": med(["commit_time_ms", "p99"]),
        "commit_time_max_ms": med(["commit_time_ms", "max"]),
        "commit_time_min_ms": med(["commit_time_ms", "min"]),
        "commit_time_negative_fraction": med(["commit_time_ms", "negative_fraction"]),
    }


def lag_table(by_tool: dict[str, list[dict]]) -> str:
    rows = []
    for name, runs in by_tool.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append([name, "error: " + runs[0].get("error", "?")] + ["-"] * 12)
            continue

        def col(key, sub=None, pattern="{:.3f}", runs=ok):
            vals = [(r.get(key) or {}).get(sub) if sub else r.get(key) for r in runs]
            return spread(vals, pattern)

        rows.append([
            name, col("lag_s", "p50"), col("lag_s", "p90"), col("lag_s", "p99"),
            col("lag_s", "max"),
            col("staleness_s", "mean") + " / " + col("staleness_s", "p99"),
            f"{sum(r['never_restorable'] for r in ok)} of {sum(r['commits'] for r in ok)}",
            col("snapshots", pattern="{:.0f}") + " (" + col("restored", pattern="{:.0f}") + ")",
            col("objects_seen", pattern="{:.0f}"),
            col("cpu_ms_per_mb_wal", pattern="{:.2f}"),
            col("peak_rss_mb", pattern="{:.0f}"),
            ",".join(str(r["exit_code"]) for r in ok),
            sum(r["failed_restores"] + r["visibility_backwards"] + r["in_place_changes"]
                + r.get("probe_mismatches", 0) for r in ok),
            spread([r["load"]["others_cores"] for r in ok], "{:.2f}"),
        ])
    return table(
        ["tool", "lag p50 s", "p90", "p99", "max", "staleness mean / p99 s", "never restorable",
         "snapshots (restored)", "objects", "CPU ms/MB WAL", "peak RSS MB", "exit",
         "anomalies", "noise cores"],
        rows,
    )


def commit_time_table(by_tool: dict[str, list[dict]]) -> str:
    """litetool's recorded commit time minus the writer's, per tool (ms).

    anomalies: segment objects disagreeing with the index, plus generations
    beyond the first (their txids are not row ids, so they are not measured).
    """
    rows = []
    for name, runs in by_tool.items():
        ok = [r for r in runs if "commit_time_ms" in r]
        if not ok:
            continue
        failed = [r["commit_time_ms"]["error"] for r in ok if "error" in r["commit_time_ms"]]
        if failed:
            rows.append([name, "error: " + failed[0]] + ["-"] * 6)
            continue
        acc = [r["commit_time_ms"] for r in ok]

        def col(key, pattern="{:.1f}", acc=acc):
            return spread([a.get(key) for a in acc], pattern)

        rows.append(
            [
                name,
                col("p50"),
                col("p99"),
                col("max"),
                col("min"),
                col("negative_fraction", "{:.2%}"),
                ", ".join(f"{a['transactions']} (missing {a['missing']})" for a in acc),
                sum(a["segment_mismatches"] + a["generations"] - 1 for a in acc),
            ]
        )
    return table(
        [
            "tool",
            "commit time error p50 ms",
            "p99",
            "max",
            "min",
            "negative",
            "transactions",
            "anomalies",
        ],
        rows,
    )


def overhead_table(by_config: dict[str, list[dict]], cp: dict) -> str:
    base = median([r["tx_per_s"] for r in by_config.get("baseline", []) if "error" not in r])
    rows = []
    for name, runs in by_config.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append([name, "error: " + runs[0].get("error", "?")] + ["-"] * 12)
            continue
        tx = [r["tx_per_s"] for r in ok]
        ratio = spread([t / base for t in tx], "{:.2f}") if base else "-"
        commit = (spread([r["commit_ms"]["p50"] for r in ok], "{:.3f}") + " / "
                  + spread([r["commit_ms"]["p99"] for r in ok], "{:.3f}") + " / "
                  + spread([r["commit_ms"]["max"] for r in ok], "{:.0f}"))
        if name == "baseline":
            rows.append([name, spread(tx, "{:.0f}"), ratio, commit,
                         spread([r["wal_mb"] for r in ok], "{:.0f}"),
                         spread([r["wal_restarts"] for r in ok], "{:.0f}")] + ["-"] * 7
                        + [spread([r["load"]["others_cores"] for r in ok], "{:.2f}")])
            continue
        copy = ", ".join(
            f"{r['copy_rows'] if r['copy_rows'] is not None else 'FAIL'}/{r['last_id']}"
            for r in ok
        )
        final = ", ".join("all" if r["final_all_rows"] else f"FAIL({r['final_rows']})"
                          for r in ok)
        ms_mb = [r["cpu_ms_per_mb_wal"] for r in ok]
        rows.append([
            name, spread(tx, "{:.0f}"), ratio, commit,
            spread([r["wal_mb"] for r in ok], "{:.0f}"),
            spread([r["wal_restarts"] for r in ok], "{:.0f}"),
            ", ".join(f"{r['replica_mb_at_writer_end']:.0f} of {r['replica_mb_caught_up']:.0f}"
                      for r in ok),
            ", ".join(f"{r['caught_up_s']:.1f}" + ("" if r["caught_up"] else "(NOT)")
                      + (f" (busy {r['busy_while_quiet_s']:.0f} s after)"
                         if r["busy_while_quiet_s"] >= 2 else "")
                      for r in ok),
            copy, final,
            spread([r["cores_during_writer"] for r in ok], "{:.2f}"),
            spread(ms_mb, "{:.2f}") + (f" ({median(ms_mb) / cp['cp_cpu_ms_per_mb']:.0f}x cp)"
                                       if cp.get("cp_cpu_ms_per_mb") else ""),
            spread([r["peak_rss_mb"] for r in ok], "{:.0f}"),
            spread([r["load"]["others_cores"] for r in ok], "{:.2f}"),
        ])
    return table(
        ["config", "tx/s", "ratio", "commit ms p50 / p99 / max", "WAL MB", "WAL restarts",
         "replica MB at writer end of final", "caught up s", "pre-SIGTERM copy rows",
         "after SIGTERM",
         "cores", "CPU ms/MB WAL", "peak RSS MB", "noise cores"],
        rows,
    )


# -- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="~1 min smoke run: 3 s phases")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--parts", default="lag,overhead", help="lag, overhead or both")
    parser.add_argument("--tools", default="ls3,ls5,litetool,litetool-0s",
                        help="lag tools (overhead uses those with a 1 s interval)")
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="lag writer tx/s")
    parser.add_argument("--speed-seconds", type=float, default=20.0)
    parser.add_argument("--scan-interval", type=float, default=0.02)
    parser.add_argument("--settle-seconds", type=float, default=3.0,
                        help="lag: replica quiet this long after the writer = done")
    parser.add_argument("--settle-timeout", type=float, default=15.0)
    parser.add_argument("--catchup-timeout", type=float, default=60.0)
    parser.add_argument("--exhaustive", action="store_true",
                        help="restore every snapshot instead of bisecting")
    parser.add_argument("--workers", type=int, default=2, help="parallel snapshot restores")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out" / "replication")
    parser.add_argument("--keep", action="store_true", help="keep run directories")
    args = parser.parse_args()
    if args.quick:  # a smoke run: too short for trustworthy overhead ratios
        args.lag_seconds = min(args.lag_seconds, 3.0)
        args.speed_seconds = min(args.speed_seconds, 3.0)
        args.settle_seconds = min(args.settle_seconds, 2.0)
        args.catchup_timeout = min(args.catchup_timeout, 30.0)
    parts = set(args.parts.split(","))
    started = time.time()
    base = args.out_dir
    base.mkdir(parents=True, exist_ok=True)
    tools, notes = select_tools(args.tools.split(","))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    result: dict = {
        "bench": "replication",
        "machine": machine(),
        "tools": {t.name: {"version": t.version, "sync_interval": t.sync_interval}
                  for t in tools},
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "notes": notes,
    }
    cp = physical_limit(base, (64 if args.quick else 256) << 20, 1 if args.quick else 3)
    result["physical_limit"] = cp
    print(f"cp of {cp['bytes'] >> 20} MiB (warm): {cp['cp_mb_per_s']:.0f} MB/s, "
          f"{cp['cp_cpu_ms_per_mb']:.2f} CPU ms/MB; fsync after it {cp['fsync_s']:.3f} s",
          file=sys.stderr)

    if "lag" in parts:
        lag_runs: dict[str, list[dict]] = {t.name: [] for t in tools}
        for rep in range(args.repeats):
            for tool in tools:
                print(f"[lag] {tool.name} repeat {rep + 1}/{args.repeats}", file=sys.stderr)
                try:
                    lag_runs[tool.name].append(lag_run(tool, args, base, rep))
                except Exception as exc:  # keep going with the other tools
                    lag_runs[tool.name].append({"tool": tool.name, "error": repr(exc)})
        result["lag"] = {
            "runs": lag_runs,
            "summary": {name: summarize_lag(runs) for name, runs in lag_runs.items()},
        }
        print(f"\n## (a) Lag at {args.rate:.0f} tx/s for {args.lag_seconds:.0f} s "
              f"(median (min-max) of {args.repeats} runs)\n")
        print(lag_table(lag_runs))
        accuracy = commit_time_table(lag_runs)
        if accuracy.count("\n") > 1:
            print(
                "\nlitetool's recorded commit time minus the writer's time right after "
                "commit() returned (ms):\n"
            )
            print(accuracy)

    if "overhead" in parts:
        speed_tools = [t for t in tools if t.sync_interval == "1s"]
        configs: list[Tool | None] = [None, *speed_tools]
        speed_runs: dict[str, list[dict]] = {"baseline": [], **{t.name: [] for t in speed_tools}}
        for rep in range(args.repeats):
            for tool in configs:
                label = tool.name if tool else "baseline"
                print(f"[overhead] {label} repeat {rep + 1}/{args.repeats}", file=sys.stderr)
                try:
                    speed_runs[label].append(overhead_run(tool, args, base, rep))
                except Exception as exc:
                    speed_runs[label].append({"config": label, "error": repr(exc)})
        base_tx = median([r["tx_per_s"] for r in speed_runs["baseline"] if "error" not in r])
        summary = {}
        for name, runs in speed_runs.items():
            ok = [r for r in runs if "error" not in r]
            tx = median([r["tx_per_s"] for r in ok])
            summary[name] = {
                "tx_per_s": tx,
                "ratio": tx / base_tx if tx and base_tx else None,
                "commit_ms_max": median([r["commit_ms"]["max"] for r in ok]),
                "commit_ms_p99": median([r["commit_ms"]["p99"] for r in ok]),
                "caught_up_s": median([r.get("caught_up_s") for r in ok]),
                "cpu_ms_per_mb_wal": median([r.get("cpu_ms_per_mb_wal") for r in ok]),
                "peak_rss_mb": median([r.get("peak_rss_mb") for r in ok]),
                "copy_all_rows": all(r.get("copy_rows") == r.get("last_id") for r in ok)
                if name != "baseline" else None,
                "final_all_rows": all(r.get("final_all_rows") for r in ok)
                if name != "baseline" else None,
            }
        result["overhead"] = {"runs": speed_runs, "summary": summary}
        print(f"\n## (b, c) Max-speed writer for {args.speed_seconds:.0f} s "
              f"(median (min-max) of {args.repeats} runs)\n")
        print(overhead_table(speed_runs, cp))

    result["elapsed_s"] = time.time() - started
    print(f"\nphysical limit: cp {cp['cp_mb_per_s']:.0f} MB/s warm, "
          f"{cp['cp_cpu_ms_per_mb']:.2f} CPU ms/MB; fsync of {cp['bytes'] >> 20} MiB after cp "
          f"{cp['fsync_s']:.3f} s; whole run {result['elapsed_s']:.0f} s")
    emit_json(result)


if __name__ == "__main__":
    main()
