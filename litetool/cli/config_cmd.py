"""``litetool config init`` and ``litetool config show``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litetool.cli.examples import epilog
from litetool.cli.output import CONFIG_HELP
from litetool.errors import ConfigError, UsageError

STARTER_METRICS_ADDR = "127.0.0.1:9717"
STARTER_HEADER = """\
# litetool configuration (written by `litetool config init`).
# Every option, with its default, is documented in the config.toml of the
# litetool repository. Secrets: write "${ENV_VAR}" instead of the value.
"""


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="write a starter config file",
        description="write a config file that replicates one database to one replica\n"
        "(asked for when not given and the terminal is interactive)",
        epilog=epilog("config init"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "path",
        nargs="?",
        default="litetool.toml",
        help="where to write it (default: ./litetool.toml)",
    )
    init.add_argument("--db", help="the database to replicate")
    init.add_argument("--replica", help="where to (a URL: file:///dir, s3://bucket/prefix, ...)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    show = actions.add_parser(
        "show",
        help="print the effective config, secrets redacted",
        description="print the effective config (the file, then LITETOOL_* variables),\n"
        "secrets redacted",
        epilog=epilog("config show"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument(
        "--config",
        help=CONFIG_HELP,
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        return _init(args)
    return _show(args)


def _init(args: argparse.Namespace) -> int:
    import tomli_w

    path = Path(args.path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    db = args.db or _ask("database to replicate (path): ")
    replica = args.replica or _ask("replica URL (file:///dir, s3://bucket/prefix, ...): ")
    if not db or not replica:
        raise UsageError(
            "config init needs the database and the replica",
            hint="litetool config init --db PATH --replica URL",
        )
    db = str(Path(db).expanduser().absolute())
    starter = {
        "log": {"level": "info", "format": "text"},
        # So that `litetool status` and `litetool tui` find the daemon.
        "metrics": {"addr": STARTER_METRICS_ADDR},
        "databases": [
            {
                "path": db,
                "replicas": [{"name": "primary", "url": replica, "sync-interval": "1s"}],
            }
        ],
    }
    # Validate before writing, so init never writes a file that does not load.
    from litetool.config.model import build_settings

    build_settings(starter, {}, source=None)
    try:
        path.write_text(STARTER_HEADER + tomli_w.dumps(starter), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    found = "" if Path(db).is_file() else " (not there yet)"
    print(f"wrote {path}: {db}{found} -> {replica}, sync every 1s")
    print("edit it for more databases, replicas, retention, metrics (config.toml lists them all)")
    where = "" if path.resolve() == Path("litetool.toml").resolve() else f" --config {path}"
    print(f"next: litetool daemon{where}   (then: litetool status{where}, litetool tui{where})")
    return 0


def _ask(prompt: str) -> str:
    """A value from the terminal, or '' when there is none to ask."""
    if not sys.stdin.isatty():
        return ""
    try:
        return input(prompt).strip()
    except EOFError:
        return ""


def _show(args: argparse.Namespace) -> int:
    import tomli_w

    from litetool.config import load_settings, redacted_dict

    settings = load_settings(args.config)
    sys.stdout.write(tomli_w.dumps(redacted_dict(settings)))
    return 0
