"""Benchmark: restore time and throughput, next to Litestream and ``cp``.

Scenarios (sizes with ``--quick`` in brackets):

(a) ``history``: a ~700 MB database [70 MB] of 500,000 rows [50,000] of
    ~1.3 KB (650 random bytes + 650 bytes of word-like text), written 1000
    rows per transaction *while the tool replicates*: the replica holds the
    initial (empty) snapshot plus the whole history.
(b) ``snapshot``: the same database, built without replication, then
    replicated fresh: the replica is essentially one snapshot.
(c) ``small``: 50,000 [5,000] single-row transactions of the same rows
    written at ~1000 tx/s while the tool replicates (a ~70 MB [7 MB]
    database with a long history).

For each scenario and tool: the restore's wall time (process start to exit,
``tool restore -o OUT file:///replica``) and MB/s of restored database, warm
(replica files in the page cache) and cold (replica files evicted with
``posix_fadvise(DONTNEED)`` first), next to ``cp`` of the database file in
the same run and the ``fsync`` after it. Every restore is verified:
``PRAGMA quick_check`` = ok and ``count(*)`` = ``max(id)`` = the rows written.

Building the inputs is slow, so each built database and replica is cached
under ``bench/out/restore-cache/<key>``; the key holds the scenario's
parameters and the tool's version (for litetool, a digest of its source, so
any change to litetool rebuilds its replicas). ``--rebuild`` ignores the cache.

    .venv/bin/python bench/restore.py [--quick] [--repeats 3] [--cold-repeats 1]
        [--scenarios a,b,c] [--tools ls3,ls5,litetool]

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from baselines import copy_file, evict_tree
from catchup import wait_caught_up
from procstat import MachineLoad
from replica_watch import ReplicaWatcher
from replicator import Replicator, remove_database, restore
from report import emit_json, machine, median, spread, table
from tools import BENCH_DIR, Tool, select_tools
from writer import create_database

WRITER = BENCH_DIR / "writer.py"
MB = 1e6
BUILD_TIMEOUT = 600.0


@dataclass(frozen=True)
class Scenario:
    name: str  # a, b, c
    title: str
    transactions: int
    rows_per_tx: int
    rate: float  # tx/s while building; 0 = as fast as possible
    replicate_while_building: bool

    @property
    def rows(self) -> int:
        return self.transactions * self.rows_per_tx

    def key(self) -> str:
        return f"{self.transactions}x{self.rows_per_tx}-r{self.rate:g}-mixed1300-s1"


def scenarios(quick: bool) -> dict[str, Scenario]:
    scale = 10 if quick else 1
    return {
        "a": Scenario("a", "history: built while replicating, 1000 rows/tx",
                      500 // scale, 1000, 0.0, True),
        "b": Scenario("b", "snapshot: same DB replicated fresh",
                      500 // scale, 1000, 0.0, False),
        "c": Scenario("c", "small: single-row txs at 1000 tx/s while replicating",
                      50_000 // scale, 1, 1000.0, True),
    }


def run_writer(db: Path, prefix: Path, scenario: Scenario) -> dict:
    subprocess.run(
        [sys.executable, str(WRITER), "--db", str(db), "--out", str(prefix),
         "--transactions", str(scenario.transactions), "--rows-per-tx",
         str(scenario.rows_per_tx), "--rate", str(scenario.rate), "--payload", "mixed1300",
         "--seed", "1"],
        check=True,
    )
    return json.loads(prefix.with_suffix(".json").read_text())


def checkpoint(db: Path) -> None:
    """Fold the WAL into the database file, so that one file is the whole database."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# -- building (cached) --------------------------------------------------------------


def build_plain(scenario: Scenario, cache: Path, rebuild: bool) -> Path:
    """The scenario's database written without replication (cp source, input of (b))."""
    entry = cache / f"plain-{scenario.key()}"
    db = entry / "source.db"
    if db.exists() and (entry / "meta.json").exists() and not rebuild:
        return db
    fresh_dir(entry)
    print(f"[build] plain database {scenario.key()}", file=sys.stderr)
    create_database(db)
    run_writer(db, entry / "writer", scenario)
    checkpoint(db)
    (entry / "meta.json").write_text(json.dumps({"rows": scenario.rows,
                                                 "db_bytes": db.stat().st_size}))
    return db


def build_replica(
    scenario: Scenario, tool: Tool, cache: Path, rebuild: bool, plain_db: Path | None
) -> dict:
    """The scenario's replica written by ``tool``; returns its meta (cached)."""
    entry = cache / f"{scenario.name}-{scenario.key()}-{tool.cache_key()}"
    meta_path = entry / "meta.json"
    if meta_path.exists() and not rebuild:
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        return meta
    fresh_dir(entry)
    print(f"[build] ({scenario.name}) {tool.name} {scenario.key()}", file=sys.stderr)
    work = entry / "work"
    work.mkdir()
    db = work / "db" / "source.db"
    db.parent.mkdir()
    replica = entry / "replica"
    started = time.time()
    if scenario.replicate_while_building:
        create_database(db)
    else:
        assert plain_db is not None
        shutil.copyfile(plain_db, db)
    repl = Replicator(tool, db, replica, entry / "replicator.log")
    watcher = ReplicaWatcher(replica, work / "watch", interval=0.1, keep_snapshots=False)
    try:
        repl.start()
        if scenario.replicate_while_building:
            repl.wait_restorable(work, timeout=60)
            watcher.start()
            summary = run_writer(db, work / "writer", scenario)
            last_id, writer_end = summary["last_id"], summary["end_wall"]
        else:
            watcher.start()
            last_id, writer_end = scenario.rows, time.time()
        caught = wait_caught_up(repl, watcher, work, last_id, writer_end, BUILD_TIMEOUT)
        watcher.stop()
        exit_code = repl.stop()
    finally:
        if watcher.is_alive():
            watcher.stop()
        repl.stop()
    if not caught["caught_up"]:
        raise RuntimeError(f"{tool.name} did not catch up while building ({scenario.name}): "
                           f"{caught['copy_error'] or caught['copy_max_id']}")
    files = [p for p in replica.rglob("*") if p.is_file()]
    meta = {
        "tool": tool.name,
        "version": tool.version,
        "rows": last_id,
        "build_s": time.time() - started,
        "caught_up_s": caught["caught_up_s"],
        "exit_code": exit_code,
        "replica_bytes": sum(p.stat().st_size for p in files),
        "replica_files": len(files),
        "cached": False,
    }
    shutil.rmtree(work)
    meta_path.write_text(json.dumps(meta))
    return meta


# -- measuring ---------------------------------------------------------------------------


def measure_restores(
    tool: Tool, replica: Path, out: Path, rows: int, warm: int, cold: int
) -> dict:
    runs = []
    for path in replica.rglob("*"):  # warm the page cache with one read of every file
        if path.is_file():
            path.read_bytes()
    for mode, count in (("warm", warm), ("cold", cold)):
        for _ in range(count):
            if mode == "cold":
                evict_tree(replica)
            result = restore(tool, replica, out, verify=True)
            verified = (result.ok and result.quick_check == "ok" and result.count == rows
                        and result.max_id == rows)
            runs.append({
                "mode": mode, "seconds": result.seconds, "ok": result.ok, "verified": verified,
                "db_bytes": result.db_bytes, "count": result.count, "max_id": result.max_id,
                "quick_check": result.quick_check, "error": result.error,
            })
    return {"runs": runs}


def measure_cp(db: Path, out: Path, warm: int, cold: int) -> dict:
    warm_runs = [copy_file(db, out) for _ in range(warm)]
    cold_runs = [copy_file(db, out, cold=True) for _ in range(cold)]
    return {
        "db_bytes": db.stat().st_size,
        "warm_s": [r.seconds for r in warm_runs],
        "cold_s": [r.seconds for r in cold_runs],
        "fsync_s": [r.fsync_seconds for r in warm_runs + cold_runs],
    }


def summarize(entry: dict, cp: dict) -> dict:
    db_mb = cp["db_bytes"] / MB
    warm = [r["seconds"] for r in entry["runs"] if r["mode"] == "warm" and r["verified"]]
    cold = [r["seconds"] for r in entry["runs"] if r["mode"] == "cold" and r["verified"]]
    cp_warm = median(cp["warm_s"])
    fsync = median(cp["fsync_s"])
    warm_s = median(warm)
    return {
        "warm_s": warm_s,
        "cold_s": median(cold),
        "warm_mb_per_s": db_mb / warm_s if warm_s else None,
        "cold_mb_per_s": db_mb / median(cold) if cold else None,
        "vs_cp": warm_s / cp_warm if warm_s and cp_warm else None,
        "vs_cp_fsync": warm_s / (cp_warm + fsync) if warm_s and cp_warm else None,
        "all_verified": all(r["verified"] for r in entry["runs"]),
        "failures": [r["error"] or f"count={r['count']} check={r['quick_check']}"
                     for r in entry["runs"] if not r["verified"]][:3],
    }


def results_table(results: dict) -> str:
    rows = []
    for name, scenario in results.items():
        cp = scenario["cp"]
        db_mb = cp["db_bytes"] / MB
        cp_warm = median(cp["warm_s"])
        rows.append([
            name, "cp", f"{db_mb:.0f}", "-",
            f"{spread(cp['warm_s'], '{:.3f}')} ({db_mb / cp_warm:.0f})",
            f"{spread(cp['cold_s'], '{:.3f}')}" if cp["cold_s"] else "-",
            "1x", f"fsync alone: {spread(cp['fsync_s'], '{:.3f}')} s", "-",
        ])
        for tool_name, entry in scenario["tools"].items():
            if "error" in entry:
                rows.append([name, tool_name, f"{db_mb:.0f}", "-", "error: " + entry["error"],
                             "-", "-", "-", "-"])
                continue
            s = entry["summary"]
            meta = entry["build"]
            warm = [r["seconds"] for r in entry["runs"] if r["mode"] == "warm"]
            cold = [r["seconds"] for r in entry["runs"] if r["mode"] == "cold"]
            ok = "ok" if s["all_verified"] else "FAILED: " + "; ".join(s["failures"])
            rows.append([
                name, tool_name, f"{db_mb:.0f}",
                f"{meta['replica_bytes'] / MB:.0f} / {meta['replica_files']}",
                f"{spread(warm, '{:.3f}')} ({s['warm_mb_per_s'] or 0:.0f})",
                f"{spread(cold, '{:.3f}')} ({s['cold_mb_per_s'] or 0:.0f})" if cold else "-",
                f"{s['vs_cp']:.1f}x" if s["vs_cp"] else "-",
                f"{s['vs_cp_fsync']:.1f}x" if s["vs_cp_fsync"] else "-",
                ok,
            ])
    return table(
        ["scenario", "tool", "DB MB", "replica MB / files", "warm s (MB/s)", "cold s (MB/s)",
         "restore / cp", "restore / (cp + fsync)", "verified"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller inputs (~70 MB)")
    parser.add_argument("--repeats", type=int, default=3, help="warm restores per tool")
    parser.add_argument("--cold-repeats", type=int, default=1)
    parser.add_argument("--scenarios", default="a,b,c")
    parser.add_argument("--tools", default="ls3,ls5,litetool")
    parser.add_argument("--rebuild", action="store_true", help="ignore cached inputs")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out")
    args = parser.parse_args()
    started = time.time()
    cache = args.out_dir / "restore-cache"
    work = fresh_dir(args.out_dir / "restore-run")
    tools, notes = select_tools(args.tools.split(","))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    all_scenarios = scenarios(args.quick)
    result: dict = {
        "bench": "restore",
        "machine": machine(),
        "tools": {t.name: t.version for t in tools},
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "notes": notes,
        "scenarios": {},
    }
    load = MachineLoad()
    for name in args.scenarios.split(","):
        scenario = all_scenarios[name]
        plain = build_plain(scenario, cache, args.rebuild) if name in ("a", "b") else None
        entry: dict = {"title": scenario.title, "rows": scenario.rows, "tools": {}}
        source_db = plain
        for tool in tools:
            try:
                meta = build_replica(scenario, tool, cache, args.rebuild, plain)
            except Exception as exc:
                entry["tools"][tool.name] = {"error": f"build: {exc!r}"}
                continue
            replica = cache / f"{scenario.name}-{scenario.key()}-{tool.cache_key()}" / "replica"
            print(f"[restore] ({name}) {tool.name}", file=sys.stderr)
            measured = measure_restores(
                tool, replica, work / "restored.db", meta["rows"], args.repeats, args.cold_repeats
            )
            measured["build"] = meta
            entry["tools"][tool.name] = measured
            if source_db is None:  # (c): keep one verified restore as the cp source
                source_db = work / "cp-source.db"
                restore(tool, replica, source_db, keep=True)
        if source_db is None:
            continue
        entry["cp"] = measure_cp(source_db, work / "cp-out.db", args.repeats, args.cold_repeats)
        for tool_entry in entry["tools"].values():
            if "error" not in tool_entry:
                tool_entry["summary"] = summarize(tool_entry, entry["cp"])
        if source_db.parent == work:
            remove_database(source_db)
        result["scenarios"][name] = entry
    result["load"] = load.result()
    result["elapsed_s"] = time.time() - started
    print(f"\n## Restore ({'quick' if args.quick else 'full'} sizes; {args.repeats} warm + "
          f"{args.cold_repeats} cold runs; median (min-max); MB/s of restored DB)\n")
    print(results_table(result["scenarios"]))
    print(f"\nmachine busy {result['load']['busy_cores']} cores, of which others "
          f"{result['load']['others_cores']}; whole run {result['elapsed_s']:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    emit_json(result)


if __name__ == "__main__":
    main()
