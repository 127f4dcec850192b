"""What a TUI session shows: handed down to the app once, never read from globals.

``litetool tui`` (``litetool/cli/tui.py``) resolves its arguments into a
``TuiOptions``; tests build one directly. Exactly one live source or none:

- ``board`` + ``engine_settings``: run the engine in-process on the app's
  loop, writing to ``board``; the live screen reads the board;
- ``board`` alone: watch a board someone else updates (tests, embedding);
- ``attach_addr``: poll a running daemon's ``/status`` (``host:port``);
- none of them: read-only browsing of replicas (no live screen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litetool.engine.runtime.status import DatabaseStatus, StatusBoard


@dataclass(frozen=True)
class ReplicaTarget:
    """A replica the timeline can browse, and how ``litetool restore`` names it.

    ``restore_args`` are the arguments that address this replica on the
    restore command line: ``(url,)``, or ``("--config", path, "--replica",
    name, db_path)`` for a database from the configuration.
    """

    name: str
    url: str
    restore_args: tuple[str, ...]
    options: dict[str, Any] | None = field(default=None, repr=False)  # store options (secrets)
    database: str | None = None

    def open(self):
        """A ``litetool.storage.Replica`` (no request made; ConfigError for a bad URL)."""
        from litetool.storage import Replica

        return Replica.open(self.url, self.options, self.name)


def published_position(
    databases: tuple[DatabaseStatus, ...], target: ReplicaTarget
) -> tuple[str | None, int] | None:
    """Where the engine says *target* stands: the generation and txid it last published
    (None: the status does not name it). The same database and replica name, or
    for a target without a database, the same URL."""
    for database in databases:
        for replica in database.replicas:
            same = (
                (database.path, replica.name) == (target.database, target.name)
                if target.database is not None
                else replica.url == target.url
            )
            if same:
                return replica.generation, replica.published_txid
    return None


@dataclass(frozen=True)
class TuiOptions:
    title: str = "litetool"
    replicas: tuple[ReplicaTarget, ...] = ()
    board: StatusBoard | None = None
    engine_settings: Any = None  # litetool.config.model.Settings: run the engine in-process
    attach_addr: str | None = None
    poll_interval_seconds: float = 0.5
    clock: Callable[[], float] = time.time  # for "3s ago"; fixed in snapshot tests
    replicas_from_status: bool = False  # attached without config: browse the daemon's replicas

    @property
    def has_live(self) -> bool:
        return self.board is not None or self.attach_addr is not None

    @property
    def runs_engine(self) -> bool:
        return self.engine_settings is not None
