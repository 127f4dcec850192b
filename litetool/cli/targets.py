"""Turning a ``DB_PATH|REPLICA_URL`` argument into the replicas to read.

A URL (``scheme://...``) or an existing directory that holds a litetool
replica is one replica; anything else is a database path looked up in the
configuration, which gives that database's replicas (``--replica NAME``
picks one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from litetool.errors import ConfigError, UsageError, shown


@dataclass(frozen=True)
class Source:
    """Where to read from: one or more replicas, and the live database if known."""

    replicas: tuple  # tuple[litetool.storage.Replica, ...]
    db_path: Path | None
    from_config: bool


def is_url(text: str) -> bool:
    return "://" in text


def is_replica_location(target: str) -> bool:
    """A URL, or a local directory holding a litetool replica (its format marker)."""
    return is_url(target) or (
        os.path.isdir(target) and os.path.exists(os.path.join(target, "litetool-replica.json"))
    )


def resolve_source(
    target: str,
    *,
    config_path: str | None,
    replica_name: str | None = None,
) -> Source:
    from litetool.storage import Replica

    if is_replica_location(target):
        if replica_name:
            raise UsageError("--replica applies only to a database path from the config")
        return Source((Replica.open(target, None, name="replica"),), None, False)
    from litetool.config import load_settings

    try:
        settings = load_settings(config_path, require_file=True)
    except ConfigError as exc:
        if not os.path.exists(target):
            raise UsageError(
                f"{shown(target)} is neither a replica URL nor a database in a config file",
                hint="pass a replica URL such as file:///backups/app, or --config",
            ) from exc
        raise
    database = settings.database(target)
    replicas = []
    for index, replica_config in enumerate(database.replicas):
        name = replica_config.display_name(index)
        if replica_name and name != replica_name:
            continue
        replicas.append(Replica.open(replica_config.url, replica_config.store_options(), name))
    if not replicas:
        raise UsageError(f"database {database.path} has no replica named {replica_name!r}")
    return Source(tuple(replicas), database.path, True)
