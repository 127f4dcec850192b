"""``litetool databases|generations|snapshots|segments``: what can be restored.

Human tables by default, ``--json`` for scripts. Times are UTC RFC 3339.
``generations`` shows each replica's lag as the daemon replicating the
database computes it (``engine.status.replica_lag``, through ``/status``):
only that daemon knows what is committed but not yet published.
"""

from __future__ import annotations

import argparse
import sys

from litetool.cli.output import CONFIG_HELP, human_bytes, print_json, print_table


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if name == "databases":
        return
    parser.add_argument(
        "target",
        metavar="DB_PATH|REPLICA_URL",
        help="a database in the config file (its replicas), or one replica URL",
    )
    if name == "generations":
        parser.epilog = GENERATIONS_NOTES
    parser.add_argument("--replica", help="only this replica (by name, from the config)")
    if name in ("snapshots", "segments"):
        parser.add_argument("--generation", help="only this generation")


GENERATIONS_NOTES = """\
LAG: how far a replica's latest generation is behind its database, as
`litetool status` shows it (transactions / commit-time seconds). Only the
daemon replicating the database knows it: it is shown for a database from the
config while its daemon answers at metrics.addr, "unknown" otherwise (a replica
URL alone names no database), and "-" for older generations."""


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
    lags: dict[str, tuple[int, float]] = {}
    lag_note = None
    if args.command == "generations":
        lags, lag_note = _daemon_lags(args, source)
    out: list[dict] = []
    for replica in source.replicas:
        await replica.ensure_format(create=False)
        infos = await replica.index.list_generations()
        for info in infos:
            if getattr(args, "generation", None) and info.generation != args.generation:
                continue
            if args.command == "generations":
                # Only the replica's latest generation can be behind its database.
                latest = info is infos[-1]
                behind, lag = lags.get(replica.name, (None, None)) if latest else (None, None)
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
                        "lag_transactions": behind,
                        "lag_seconds": lag,
                        "latest": latest,
                        "reason": info.reason,
                    }
                )
                continue
            index = await replica.index.load_generation(info.generation)
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
                    lag_cell(r["lag_transactions"], r["lag_seconds"], latest=r["latest"]),
                    r["reason"],
                )
                for r in out
            ],
        )
        if lag_note and any(r["latest"] and r["lag_seconds"] is None for r in out):
            print(f"note: lag unknown: {lag_note}", file=sys.stderr)
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


LAG_UNKNOWN = "unknown"


def lag_cell(behind: int | None, seconds: float | None, *, latest: bool) -> str:
    """The LAG column: as ``litetool status`` writes the daemon's ``replica_lag``
    (``3 tx / 0.6s``), ``unknown`` for a latest generation whose database cannot be
    asked, ``-`` for an older generation (it ended; nothing is behind it)."""
    if not latest:
        return "-"
    if behind is None or seconds is None:
        return LAG_UNKNOWN
    return f"{behind} tx / {seconds:.1f}s"


def _daemon_lags(args: argparse.Namespace, source) -> tuple[dict[str, tuple[int, float]], str]:
    """Each replica's lag as the daemon replicating the database computes it
    (``engine.status.replica_lag``, through its /status), or why it cannot be known.

    Only the daemon knows how far the live database is ahead of a replica: what is
    committed but not yet published. A replica URL alone names no database."""
    from litetool.cli.status import fetch_status
    from litetool.config import load_settings
    from litetool.errors import LitetoolError

    if source.db_path is None:
        return {}, (
            "a replica URL alone does not say how far its database is ahead "
            "(pass the database path from the config while the daemon runs, "
            "or see `litetool status`)"
        )
    addr = load_settings(args.config, require_file=True).metrics.addr
    if not addr:
        return {}, "metrics.addr is not set in the config, so no daemon can be asked"
    try:
        status = fetch_status(addr, timeout=2.0)
    except LitetoolError:
        return {}, f"no litetool daemon answers at {addr} (metrics.addr)"
    for database in status.get("databases", ()):
        if database.get("path") == str(source.db_path):
            return {
                replica["name"]: (int(replica["lag_transactions"]), float(replica["lag_seconds"]))
                for replica in database.get("replicas", ())
                if "lag_transactions" in replica and "lag_seconds" in replica
            }, f"the daemon at {addr} does not report every replica yet"
    return {}, f"the daemon at {addr} does not replicate {source.db_path}"
