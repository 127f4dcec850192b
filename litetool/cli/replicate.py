"""``litetool replicate`` (quick start) and ``litetool daemon`` (config file)."""

from __future__ import annotations

import argparse

from litetool.cli.output import CONFIG_HELP
from litetool.errors import UsageError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "replicate":
        parser.add_argument("db_path", metavar="DB_PATH", help="the SQLite database")
        parser.add_argument(
            "replica_urls",
            metavar="REPLICA_URL",
            nargs="+",
            help="file:///dir, /dir, s3://bucket/prefix, gs://..., az://container/prefix",
        )
        parser.add_argument(
            "--sync-interval",
            metavar="DURATION",
            default="1s",
            help="time between uploads (default: 1s, as in config.toml; 0s = at once)",
        )
        parser.add_argument(
            "--snapshot-interval",
            metavar="DURATION",
            help="time between snapshots (default: 24h, as in config.toml)",
        )
    else:
        parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument(
        "--exec",
        dest="exec_command",
        metavar="CMD",
        help="run the application as a child; stop when it exits",
    )
    from_config = "" if name == "replicate" else "log.{} from the config, else "
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help=f"log level (default: {from_config.format('level')}info)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help=f"log lines: key=value text or JSON (default: {from_config.format('format')}text)",
    )
    parser.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="serve /metrics and /status there (default: "
        + ("off)" if name == "replicate" else "metrics.addr from the config, else off)"),
    )


def run(args: argparse.Namespace) -> int:
    # Before the heavy imports, so every allocation follows it.
    from litetool.engine.runtime.memory import tune_allocator

    tune_allocator()

    import asyncio

    from litetool.config import load_settings
    from litetool.engine.daemon import run_daemon
    from litetool.eventlog import make_log

    overrides: dict = {}
    if args.command == "replicate":
        overrides["databases"] = [
            {
                "path": args.db_path,
                **({"snapshot-interval": args.snapshot_interval} if args.snapshot_interval else {}),
                "replicas": [
                    {
                        "url": url,
                        "name": f"r{i}" if len(args.replica_urls) > 1 else "replica",
                        "sync-interval": args.sync_interval,
                    }
                    for i, url in enumerate(args.replica_urls)
                ],
            }
        ]
        settings = load_settings(None, overrides=overrides, use_files=False)
    else:
        settings = load_settings(args.config, require_file=True)
    log_config = settings.log
    log = make_log(args.log_level or log_config.level, args.log_format or log_config.format)
    if args.metrics_addr:
        settings = settings.model_copy(
            update={"metrics": settings.metrics.model_copy(update={"addr": args.metrics_addr})}
        )
    if not settings.databases:
        raise UsageError("no databases to replicate")
    return asyncio.run(run_daemon(settings, log=log, exec_command=args.exec_command))
