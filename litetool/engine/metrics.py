"""Prometheus ``/metrics`` and JSON ``/status`` over a small HTTP server.

Off by default; ``metrics.addr`` turns it on (bound to 127.0.0.1 unless the
address says otherwise). It only *reads* the ``StatusBoard``. ``litetool
status`` and ``litetool tui`` attach to a running daemon through ``/status``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Any

from litetool.engine.runtime.status import StatusBoard, replica_lag
from litetool.errors import ConfigError

_DATABASE_GAUGES = (
    ("db_size_bytes", "gauge", "Size of the database file in bytes"),
    ("wal_size_bytes", "gauge", "Size of the WAL file in bytes"),
    ("wal_bytes_total", "counter", "WAL bytes captured"),
    ("txid", "gauge", "Last captured transaction id of the current generation"),
    ("spool_bytes", "gauge", "Bytes held in the local spool"),
    ("spool_over_cap", "gauge", "1 when the spool reached its size cap"),
    ("backpressure", "gauge", "1 while writers are braked because a reachable replica lags"),
    ("capture_errors", "counter", "Capture errors"),
    ("task_failures", "counter", "Unexpected exceptions in litetool's tasks (each is restarted)"),
    ("checkpoint_seconds_total", "counter", "Time spent in controlled checkpoints"),
    (
        "writers_held_seconds_total",
        "counter",
        "Time the application's writers waited for controlled checkpoints",
    ),
    (
        "braked_seconds_total",
        "counter",
        "Time litetool held the application's writers in brake pulses",
    ),
)
_REPLICA_GAUGES = (
    ("published_txid", "gauge", "Last transaction id published to the replica"),
    ("syncs", "counter", "Successful syncs"),
    ("sync_errors", "counter", "Failed syncs"),
    ("sync_seconds_total", "counter", "Time spent in syncs"),
    ("snapshots", "counter", "Snapshots published"),
    ("stalled", "gauge", "1 while nothing is published although transactions wait"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(board: StatusBoard, now_us: int | None = None) -> str:
    """The Prometheus text exposition of the board."""
    now_us = now_us or int(time.time() * 1e6)
    lines: list[str] = []
    databases = board.databases()

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        metric = f"litetool_{name}"
        if kind == "counter" and not metric.endswith("_total"):
            metric += "_total"
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} {kind}")
        for labels, value in samples:
            number = int(value) if float(value).is_integer() else float(value)
            lines.append(f"{metric}{{{labels}}} {number}")

    for field, kind, help_text in _DATABASE_GAUGES:
        family(
            field,
            kind,
            help_text,
            [(f'db="{_escape(db.path)}"', getattr(db, field)) for db in databases],
        )
    family(
        "checkpoints",
        "counter",
        "Controlled checkpoints by mode",
        [
            (f'db="{_escape(db.path)}",mode="{mode}"', count)
            for db in databases
            for mode, count in sorted(db.checkpoints.items())
        ],
    )
    for field, kind, help_text in _REPLICA_GAUGES:
        family(
            f"replica_{field}",
            kind,
            help_text,
            [
                (f'db="{_escape(db.path)}",replica="{_escape(r.name)}"', getattr(r, field))
                for db in databases
                for r in db.replicas
            ],
        )
    lag_tx, lag_s = [], []
    for db in databases:
        for r in db.replicas:
            labels = f'db="{_escape(db.path)}",replica="{_escape(r.name)}"'
            behind, seconds = replica_lag(db, r)
            lag_tx.append((labels, behind))
            lag_s.append((labels, seconds))
    family("replica_lag_transactions", "gauge", "Transactions not yet on the replica", lag_tx)
    family("replica_lag_seconds", "gauge", "Commit-time lag of the replica", lag_s)
    for key, help_text in (("requests", "Object store requests"), ("bytes", "Bytes moved")):
        family(
            f"replica_{key}",
            "counter",
            f"{help_text} by kind",
            [
                (f'db="{_escape(db.path)}",replica="{_escape(r.name)}",kind="{kind}"', value)
                for db in databases
                for r in db.replicas
                for kind, value in sorted(getattr(r, key).items())
            ],
        )
    family("up", "gauge", "1 while litetool runs", [("", 1)])
    return "\n".join(lines) + "\n"


def parse_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"metrics.addr: expected host:port, got {addr!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)


class MetricsServer:
    """Serves /metrics, /status and /healthz from a StatusBoard, and ``POST
    /verify`` (validate every replica now; ``verify`` returns JSON-ready data)."""

    def __init__(self, board: StatusBoard, addr: str, verify=None) -> None:
        self.board = board
        self.verify = verify
        self.host, self.port = parse_addr(addr)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise ConfigError(
                f"metrics.addr: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        sockets = self._server.sockets or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, target = request.split(b" ", 2)[:2]
            path = target.decode("ascii", "replace").split("?")[0]
            if path == "/verify" and method == b"POST" and self.verify is not None:
                body = json.dumps(await self.verify()).encode()
                await self._respond(writer, 200, "application/json", body)
            elif path == "/metrics":
                body = render_metrics(self.board).encode()
                await self._respond(writer, 200, "text/plain; version=0.0.4", body)
            elif path == "/status":
                status = self.board.as_dict()
                query = target.decode("ascii", "replace").partition("?")[2]
                for key, _, value in (p.partition("=") for p in query.split("&")):
                    if key == "events_since" and value.isdigit():
                        status["events"] = [asdict(e) for e in self.board.events_since(int(value))]
                body = json.dumps(status).encode()
                await self._respond(writer, 200, "application/json", body)
            elif path == "/healthz":
                await self._respond(writer, 200, "text/plain", b"ok\n")
            else:
                await self._respond(writer, 404, "text/plain", b"not found\n")
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            IndexError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, code: int, kind: str, body: bytes) -> None:
        reason = {200: "OK", 404: "Not Found"}[code]
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
