"""``litetool status``: the status of a running daemon, from its /status endpoint."""

from __future__ import annotations

import argparse
import json
import time

from litetool.cli.output import CONFIG_HELP, human_bytes, print_json, print_table
from litetool.errors import StorageUnavailable, UsageError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="where the daemon serves /status (default: metrics.addr from the config)",
    )
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def fetch_status(addr: str, timeout: float = 3.0) -> dict:
    """GET http://addr/status (the daemon's StatusBoard as JSON)."""
    import urllib.error
    import urllib.request

    from litetool.engine.metrics import parse_addr
    from litetool.errors import ConfigError

    try:
        host, port = parse_addr(addr)
    except ConfigError:
        raise UsageError(f"expected host:port, got {addr!r}") from None
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StorageUnavailable(
            f"no litetool daemon answers at {addr}: {reason}",
            hint="is `litetool daemon` running with metrics.addr set?",
        ) from None


def run(args: argparse.Namespace) -> int:
    addr = args.addr
    if not addr:
        from litetool.config import load_settings

        addr = load_settings(args.config, require_file=True).metrics.addr
        if not addr:
            raise UsageError("metrics.addr is not set in the config", hint="or pass --addr")
    status = fetch_status(addr)
    if args.json:
        print_json(status)
        return 0
    now_us = status.get("now_us") or int(time.time() * 1e6)
    rows = []
    for db in status["databases"]:
        for replica in db["replicas"] or [{}]:
            # The daemon's own lag (``engine.status.replica_lag``), as in /metrics.
            behind = replica.get("lag_transactions", db["txid"])
            lag = replica.get("lag_seconds", 0.0)
            age = (now_us - replica["last_sync_us"]) / 1e6 if replica.get("last_sync_us") else None
            rows.append(
                (
                    db["path"],
                    db["state"],
                    db["generation"],
                    db["txid"],
                    human_bytes(db["wal_size_bytes"]),
                    replica.get("name", ""),
                    replica.get("state", ""),
                    replica.get("published_txid", ""),
                    f"{behind} tx / {lag:.1f}s",
                    "" if age is None else f"{age:.1f}s ago",
                    replica.get("last_error") or "",
                )
            )
    print_table(
        (
            "database",
            "state",
            "generation",
            "txid",
            "wal",
            "replica",
            "replica state",
            "published",
            "lag",
            "last sync",
            "error",
        ),
        rows,
    )
    return 0
