"""``litetool databases|generations|snapshots|segments``: what can be restored.

Human tables by default, ``--json`` for scripts. Times are UTC RFC 3339.
"""

from __future__ import annotations

import argparse
import os

from litetool.cli.output import CONFIG_HELP, human_bytes, print_json, print_table


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if name == "databases":
        return
    parser.add_argument("target", metavar="DB_PATH|REPLICA_URL")
    parser.add_argument("--replica", help="only this replica (by name, from the config)")
    if name in ("snapshots", "segments"):
        parser.add_argument("--generation", help="only this generation")


def run(args: argparse.Namespace) -> int:
    if args.command == "databases":
        return _databases(args)
    import asyncio

    return asyncio.run(_replica_listing(args))


def _databases(args: argparse.Namespace) -> int:
    from litetool.config import load_settings

    settings = load_settings(args.config, require_file=True)
    rows = []
    for db in settings.databases:
        names = [r.display_name(i) for i, r in enumerate(db.replicas)]
        rows.append(
            {
                "path": str(db.path),
                "replicas": names,
                "spool": str(db.resolved_spool_dir()),
                "exists": db.path.exists(),
            }
        )
    if args.json:
        print_json(rows)
    else:
        print_table(
            ("path", "replicas", "spool"),
            [(r["path"], ",".join(r["replicas"]), r["spool"]) for r in rows],
        )
    return 0


async def _replica_listing(args: argparse.Namespace) -> int:
    from litetool.cli.targets import resolve_source
    from litetool.timespec import format_instant_us

    source = resolve_source(args.target, config_path=args.config, replica_name=args.replica)
    live_mtime_us = _live_mtime_us(source.db_path)
    out: list[dict] = []
    for replica in source.replicas:
        await replica.ensure_format(create=False)
        infos = await replica.list_generations()
        for info in infos:
            if getattr(args, "generation", None) and info.generation != args.generation:
                continue
            if args.command == "generations":
                lag = None
                if live_mtime_us is not None and info is infos[-1]:
                    lag = max(0.0, (live_mtime_us - info.last_commit_time_us) / 1e6)
                out.append(
                    {
                        "replica": replica.name,
                        "generation": info.generation,
                        "created": format_instant_us(info.created_ms * 1000),
                        "start": format_instant_us(info.first_commit_time_us),
                        "end": format_instant_us(info.last_commit_time_us),
                        "first_txid": info.first_txid,
                        "last_txid": info.last_txid,
                        "records": info.record_count,
                        "stored_bytes": info.stored_bytes,
                        "lag_seconds": lag,
                        "reason": info.reason,
                    }
                )
                continue
            index = await replica.load_generation(info.generation)
            if args.command == "snapshots":
                for snap in index.snapshots:
                    out.append(
                        {
                            "replica": replica.name,
                            "generation": info.generation,
                            "txid": snap.txid,
                            "time": format_instant_us(snap.time_us),
                            "page_size": snap.page_size,
                            "page_count": snap.page_count,
                            "db_bytes": snap.page_size * snap.page_count,
                            "stored_bytes": snap.stored_bytes,
                        }
                    )
            else:
                for seg in index.segments:
                    out.append(
                        {
                            "replica": replica.name,
                            "generation": info.generation,
                            "first_txid": seg.first_txid,
                            "last_txid": seg.last_txid,
                            "start": format_instant_us(seg.first_time_us),
                            "end": format_instant_us(seg.last_time_us),
                            "frames": seg.frames,
                            "stored_bytes": seg.stored_bytes,
                            "object": seg.digest,
                        }
                    )
    if args.json:
        print_json(out)
        return 0
    if args.command == "generations":
        print_table(
            ("replica", "generation", "start", "end", "txids", "size", "lag", "reason"),
            [
                (
                    r["replica"],
                    r["generation"],
                    r["start"],
                    r["end"],
                    f"{r['first_txid']}..{r['last_txid']}",
                    human_bytes(r["stored_bytes"]),
                    "" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}s",
                    r["reason"],
                )
                for r in out
            ],
        )
    elif args.command == "snapshots":
        print_table(
            ("replica", "generation", "txid", "time", "db size", "stored"),
            [
                (
                    r["replica"],
                    r["generation"],
                    r["txid"],
                    r["time"],
                    human_bytes(r["db_bytes"]),
                    human_bytes(r["stored_bytes"]),
                )
                for r in out
            ],
        )
    else:
        print_table(
            ("replica", "generation", "txids", "start", "end", "frames", "stored"),
            [
                (
                    r["replica"],
                    r["generation"],
                    f"{r['first_txid']}..{r['last_txid']}",
                    r["start"],
                    r["end"],
                    r["frames"],
                    human_bytes(r["stored_bytes"]),
                )
                for r in out
            ],
        )
    return 0


def _live_mtime_us(db_path) -> int | None:
    if db_path is None:
        return None
    times = []
    for path in (str(db_path), f"{db_path}-wal"):
        try:
            times.append(os.stat(path).st_mtime_ns // 1000)
        except OSError:
            pass
    return max(times) if times else None
