"""``litetool verify``: restore the latest point into a temp dir and check it.

With a database path from the config, the restored content is also compared
with the live database at the same txid: by the running daemon (through its
``POST /verify``) when one answers at ``metrics.addr``, otherwise directly
when the live database is still at the replicated point. Exit 1 on any
difference or failure.
"""

from __future__ import annotations

import argparse

from litetool.cli.output import CONFIG_HELP, print_json, print_table


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="DB_PATH|REPLICA_URL",
        help="a database in the config file (its replicas), or one replica URL",
    )
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--replica", help="only this replica (by name, from the config)")
    parser.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="ask the daemon there (default: metrics.addr from the config)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from litetool.cli.targets import resolve_source

    source = resolve_source(args.target, config_path=args.config, replica_name=args.replica)
    results = None
    if source.from_config:
        results = _ask_daemon(args, source)
    if results is None:
        results = asyncio.run(_verify_offline(args, source))
    if args.json:
        print_json(results)
    else:
        print_table(
            ("replica", "generation", "txid", "result", "detail"),
            [
                (
                    r["replica"],
                    r["generation"],
                    r["txid"],
                    "ok" if r["ok"] else "FAILED",
                    r["message"],
                )
                for r in results
            ],
        )
    return 0 if results and all(r["ok"] for r in results) else 1


def _ask_daemon(args: argparse.Namespace, source) -> list[dict] | None:
    import json
    import urllib.error
    import urllib.request

    addr = args.addr
    if not addr:
        from litetool.config import load_settings

        addr = load_settings(args.config, require_file=True).metrics.addr
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    request = urllib.request.Request(f"http://{host or '127.0.0.1'}:{port}/verify", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            results = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None  # no daemon: verify offline
    names = {r.name for r in source.replicas}
    return [r for r in results if r["database"] == str(source.db_path) and r["replica"] in names]


async def _verify_offline(args: argparse.Namespace, source) -> list[dict]:
    import asyncio

    from litetool.engine.validation import restored_digest
    from litetool.errors import LitetoolError
    from litetool.restore import RestoreTarget, load_candidates, plan_restore

    live = None
    if source.db_path is not None:
        from litetool.config import load_settings
        from litetool.engine.offline import live_point

        database = load_settings(args.config, require_file=True).database(source.db_path)
        live = await asyncio.to_thread(live_point, database)
    results = []
    for replica in source.replicas:
        row = {
            "database": str(source.db_path or ""),
            "replica": replica.name,
            "generation": None,
            "txid": None,
            "ok": False,
            "message": "",
        }
        try:
            candidates = await load_candidates([replica])
            plan = plan_restore(candidates, RestoreTarget())
            row["generation"], row["txid"] = plan.generation, plan.txid
            digest = await restored_digest(replica, plan.generation, plan.txid)
        except LitetoolError as exc:
            row["message"] = exc.message
            results.append(row)
            continue
        row["ok"] = True
        row["message"] = "restores with integrity_check ok"
        if live is not None:
            if live.digest is None:
                row["message"] += f"; content not compared: {live.reason}"
            elif (live.generation, live.txid) != (plan.generation, plan.txid):
                row["message"] += (
                    f"; content not compared: the live database is at txid {live.txid} "
                    f"of generation {live.generation}"
                )
            elif live.digest == digest:
                row["message"] += "; identical to the live database"
            else:
                row["ok"] = False
                row["message"] = f"MISMATCH with the live database at txid {plan.txid}"
        results.append(row)
    return results
