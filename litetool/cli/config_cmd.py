"""``litetool config init`` and ``litetool config show``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litetool.errors import ConfigError, UsageError

STARTER_HEADER = """\
# litetool configuration (written by `litetool config init`).
# Every option, with its default, is documented in the config.toml of the
# litetool repository. Secrets: write "${ENV_VAR}" instead of the value.
"""


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="write a starter config file")
    init.add_argument("path", nargs="?", default="litetool.toml", help="where to write it")
    init.add_argument("--db", default="/var/lib/app/app.db", help="database path")
    init.add_argument("--replica", default="file:///var/backups/litetool/app", help="replica URL")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    show = actions.add_parser("show", help="print the effective config, secrets redacted")
    show.add_argument("--config", help="config file (default: $LITETOOL_CONFIG, /etc)")


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        return _init(args)
    return _show(args)


def _init(args: argparse.Namespace) -> int:
    import tomli_w

    path = Path(args.path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    starter = {
        "log": {"level": "info", "format": "text"},
        "metrics": {"addr": ""},
        "databases": [
            {
                "path": args.db,
                "replicas": [{"name": "primary", "url": args.replica, "sync-interval": "1s"}],
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
    print(f"wrote {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import tomli_w

    from litetool.config import load_settings, redacted_dict

    settings = load_settings(args.config)
    sys.stdout.write(tomli_w.dumps(redacted_dict(settings)))
    return 0
