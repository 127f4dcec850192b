"""``litetool tui``: live replication, the timeline of restore points, restore.

What it shows depends on the arguments:

- ``REPLICA_URL`` (or a directory holding a replica): browse that replica
  read-only (plus the live screen of a daemon if ``--attach`` is given);
- ``--attach HOST:PORT``: watch a running daemon through its ``/status``;
  with a config (``--config``/``$LITETOOL_CONFIG``), browse its replicas,
  else the replicas the daemon reports;
- otherwise the config's databases (``DB_PATH`` picks one): if the config's
  ``metrics.addr`` answers, attach to that daemon; if not, run the engine
  in-process (stopped with a final sync on quit).

textual is imported only inside ``run`` (``litetool --help`` stays fast).
"""

from __future__ import annotations

import argparse
import os

from litetool.cli.output import CONFIG_HELP
from litetool.errors import ConfigError, UsageError, shown


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        metavar="DB_PATH|REPLICA_URL",
        help="a database from the config, or a replica to browse read-only",
    )
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument(
        "--attach",
        metavar="HOST:PORT",
        help="watch the daemon serving /status there instead of running the engine",
    )


def _is_replica(target: str) -> bool:
    from litetool.cli.targets import is_replica_location

    return is_replica_location(target)


def run(args: argparse.Namespace) -> int:
    from litetool import __version__
    from litetool.config import load_settings
    from litetool.engine.runtime.status import StatusBoard
    from litetool.tui.daemon_client import daemon_answers, parse_attach_addr
    from litetool.tui.options import ReplicaTarget, TuiOptions

    target: str | None = args.target
    if args.attach:
        parse_attach_addr(args.attach)  # a one-line ConfigError before the screen opens
    replicas: tuple[ReplicaTarget, ...] = ()
    settings = None
    databases: list = []
    if target is not None and _is_replica(target):
        replicas = (ReplicaTarget(name="replica", url=target, restore_args=(target,)),)
    else:
        try:
            settings = load_settings(args.config, require_file=True)
        except ConfigError as exc:
            if target is not None and not os.path.exists(target):
                raise UsageError(
                    f"{shown(target)} is neither a replica URL nor a database in a config file",
                    hint="pass a replica URL such as file:///backups/app, or --config",
                ) from exc
            if target is not None or args.config:
                raise
            if not args.attach:
                raise UsageError(
                    "nothing to show: pass a replica URL, a database with a config file, "
                    "or --attach HOST:PORT",
                    hint="e.g. `litetool tui file:///backups/app` or "
                    "`litetool tui --config litetool.toml`",
                ) from exc
        if settings is not None:
            databases = [settings.database(target)] if target else list(settings.databases)
            config_args = ("--config", os.path.abspath(args.config)) if args.config else ()
            replicas = tuple(
                ReplicaTarget(
                    name=replica.display_name(index),
                    url=replica.url,
                    options=replica.store_options(),
                    restore_args=(
                        *config_args,
                        "--replica",
                        replica.display_name(index),
                        str(database.path),
                    ),
                    database=str(database.path),
                )
                for database in databases
                for index, replica in enumerate(database.replicas)
            )

    attach_addr = args.attach
    board = None
    engine_settings = None
    if attach_addr is None and databases:
        if settings.metrics.addr and daemon_answers(settings.metrics.addr):
            attach_addr = settings.metrics.addr
        else:
            engine_settings = settings.model_copy(update={"databases": databases})
            board = StatusBoard(version=__version__)
    if not replicas and attach_addr is None and board is None:
        raise UsageError("the configuration has no databases", hint="add a [[databases]] table")

    from litetool.tui.app import run_tui

    return run_tui(
        TuiOptions(
            title="litetool",
            replicas=replicas,
            board=board,
            engine_settings=engine_settings,
            attach_addr=attach_addr,
            replicas_from_status=attach_addr is not None and settings is None and not replicas,
        )
    )
