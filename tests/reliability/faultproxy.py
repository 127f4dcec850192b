"""A fault-injecting HTTP/1.1 forwarding proxy in front of a real object store.

Standard library only, threads (one per client connection), 127.0.0.1 only.
The client (litetool, obstore) is pointed at :attr:`FaultProxy.endpoint`
instead of the server; every request is read whole, then, as the test
decides while it runs (:meth:`FaultProxy.set`, :meth:`FaultProxy.down`):

- forwarded unchanged (method, target and headers byte for byte, so request
  signatures stay valid) and the answer relayed, after ``latency`` seconds;
- answered by the proxy itself with 500 ``InternalError`` (``fail``), or
  with 503 ``SlowDown`` (``throttle``; Azure's ``ServerBusy`` with
  ``dialect="azure"``), the body each store sends;
- forwarded, then answered with 500 although the server did it (``lose``:
  a response lost on the way back, as a load balancer does);
- never answered (``hang``): the connection stays open until the client
  gives up or the proxy closes;
- forwarded, and then never answered (``drop``: the server did the request,
  the client times out not knowing it);
- refused: :meth:`down` closes the listening socket and every open
  connection (clients get ECONNREFUSED, exactly as from a stopped server)
  until :meth:`up` listens on the same port again.

Fractions are drawn from a seeded ``random.Random``, or with ``spread=True``
spread evenly over the requests (0.1 is exactly every 10th: no run of bad
luck, so a test can count on the requests in between); ``methods`` and
``path_contains`` limit the faults to some requests (``methods={"PUT"},
path_contains="/index/"``: only index record writes). :attr:`counts` says
what happened.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
# Below the kernel's ephemeral range (32768+) and away from tests/servers.py's
# range (11000-31000): no outgoing connection can take our port while we are down.
_PORT_LOW, _PORT_HIGH = 7000, 11000
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
_MAX_LINE = 65536
_ACTIONS = ("hang", "fail", "throttle", "lose", "drop")
_UPSTREAM_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Faults:
    """What the proxy does to the requests it reads (fractions from 0 to 1)."""

    latency: float = 0.0  # seconds added before each request is handled
    fail: float = 0.0  # answered 500 InternalError, not forwarded
    throttle: float = 0.0  # answered 503 SlowDown (S3) / ServerBusy (Azure), not forwarded
    hang: float = 0.0  # never answered
    lose: float = 0.0  # forwarded, then answered 500 (the server's answer is dropped)
    drop: float = 0.0  # forwarded, then never answered (the client times out)
    methods: frozenset[str] | None = None  # the methods faults apply to (None: all)
    path_contains: str | None = None  # ... and only to targets containing this
    spread: bool = False  # evenly: a fraction of 0.1 is every 10th request, not random


@dataclass(slots=True)
class Counts:
    """What the proxy saw and did."""

    connections: int = 0
    requests: int = 0
    forwarded: int = 0
    delayed: int = 0
    failed: int = 0
    throttled: int = 0
    hung: int = 0
    lost: int = 0
    dropped: int = 0
    upstream_errors: int = 0  # the server itself could not be reached: 502
    outages: int = 0  # times down() was called
    methods: Counter = field(default_factory=Counter)

    @property
    def faults(self) -> int:
        """Requests that did not get the server's answer because of a fault we injected."""
        return self.failed + self.throttled + self.hung + self.lost + self.dropped

    def as_dict(self) -> dict:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "forwarded": self.forwarded,
            "delayed": self.delayed,
            "failed": self.failed,
            "throttled": self.throttled,
            "hung": self.hung,
            "lost": self.lost,
            "dropped": self.dropped,
            "upstream_errors": self.upstream_errors,
            "outages": self.outages,
            "faults": self.faults,
        }


class _Closed(Exception):
    """The client closed its connection (or the proxy is closing it)."""


def _error_body(dialect: str, code: str, message: str) -> bytes:
    request_id = uuid.uuid4().hex
    if dialect == "azure":
        when = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
        message = f"{message}\nRequestId:{request_id}\nTime:{when}"
        return (
            '\ufeff<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()


class FaultProxy:
    """See the module docstring. Use as a context manager, or ``start``/``close``."""

    def __init__(
        self, upstream: str, *, dialect: str = "s3", seed: int = 0, port: int | None = None
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
            raise ValueError(f"upstream must be http://{LOOPBACK}:PORT[/path], got {upstream}")
        if dialect not in ("s3", "azure"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.upstream = upstream
        self._upstream_port = parts.port
        self._path = parts.path.rstrip("/")  # Azurite's endpoint carries the account name
        self.dialect = dialect
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faults = Faults()
        self._owed = dict.fromkeys(_ACTIONS, 0.0)  # spread: the share each action is owed
        self._counts = Counts()
        self._requested_port = port
        self.port = 0
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._closing = threading.Event()
        self._down = False

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What the client uses instead of the upstream endpoint (same path)."""
        return f"http://{LOOPBACK}:{self.port}{self._path}"

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def close(self) -> None:
        self._closing.set()
        self._stop_listening()
        self._drop_clients()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.port:
            listener.bind((LOOPBACK, self.port))
        elif self._requested_port is not None:
            listener.bind((LOOPBACK, self._requested_port))
        else:
            rng = random.Random()
            for _ in range(1000):
                try:
                    listener.bind((LOOPBACK, rng.randrange(_PORT_LOW, _PORT_HIGH)))
                    break
                except OSError:
                    continue
            else:
                listener.close()
                raise RuntimeError("no free port for the fault proxy")
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepter = threading.Thread(
            target=self._accept_loop, args=(listener,), name="faultproxy-accept", daemon=True
        )
        self._accepter.start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close frees the port.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accepter is not None:
            self._accepter.join(timeout=5)
            self._accepter = None

    def _drop_clients(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    # -- controls -------------------------------------------------------------------------

    def set(self, **faults: object) -> Faults:
        """Replace every fault at once (what is not named is off); returns the new set."""
        if "methods" in faults and faults["methods"] is not None:
            faults["methods"] = frozenset(str(m).upper() for m in faults["methods"])  # type: ignore[union-attr]
        new = replace(Faults(), **faults)  # type: ignore[arg-type]
        for name in _ACTIONS:
            if not 0.0 <= getattr(new, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction from 0 to 1")
        if new.fail + new.throttle + new.hang + new.lose + new.drop > 1.0:
            raise ValueError("the fractions add up to more than 1")
        with self._lock:
            self._faults = new
            self._owed = dict.fromkeys(_ACTIONS, 0.0)
        return new

    def pass_through(self) -> None:
        """No faults (and listening, if it was down)."""
        self.set()
        self.up()

    def down(self) -> None:
        """The store is down: refuse connections and drop the open ones."""
        with self._lock:
            if self._down:
                return
            self._down = True
            self._counts.outages += 1
        self._stop_listening()
        self._drop_clients()

    def up(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            if not self._down:
                return
            self._down = False
        self._listen()

    @property
    def is_down(self) -> bool:
        return self._down

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def counts(self) -> Counts:
        """A copy of the counters."""
        with self._lock:
            return replace(self._counts, methods=Counter(self._counts.methods))

    # -- serving --------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down() or close()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(client)
                self._counts.connections += 1
            threading.Thread(
                target=self._serve, args=(client,), name="faultproxy-conn", daemon=True
            ).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while not self._closing.is_set():
                request = self._read_request(reader, client)
                if request is None:
                    return
                keep_alive = self._handle(client, *request)
                if not keep_alive:
                    return
        except (_Closed, OSError, ValueError):
            return
        finally:
            with self._lock:
                self._clients.discard(client)
            with contextlib.suppress(OSError):
                reader.close()
            with contextlib.suppress(OSError):
                client.close()

    def _read_request(
        self, reader, client: socket.socket
    ) -> tuple[str, str, str, list[tuple[str, str]], bytes] | None:
        line = reader.readline(_MAX_LINE)
        if not line:
            return None
        while line in (b"\r\n", b"\n"):  # tolerated between requests
            line = reader.readline(_MAX_LINE)
            if not line:
                return None
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while True:
            raw = reader.readline(_MAX_LINE)
            if not raw:
                raise _Closed
            if raw in (b"\r\n", b"\n"):
                break
            name, _, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {name.lower(): value for name, value in headers}
        if lower.get("expect", "").lower() == "100-continue":
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = self._read_chunked(reader)
            headers = [(n, v) for n, v in headers if n.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body))))
        else:
            length = int(lower.get("content-length", "0") or 0)
            body = reader.read(length) if length else b""
            if len(body) != length:
                raise _Closed
        return method.upper(), target, version, headers, body

    @staticmethod
    def _read_chunked(reader) -> bytes:
        parts = []
        while True:
            size = int(reader.readline(_MAX_LINE).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(reader.read(size))
            reader.readline(_MAX_LINE)

    @staticmethod
    def _applies(faults: Faults, method: str, target: str) -> bool:
        return (faults.methods is None or method in faults.methods) and (
            faults.path_contains is None or faults.path_contains in target
        )

    def _decide(self, method: str, target: str) -> tuple[Faults, str]:
        with self._lock:
            faults = self._faults
            self._counts.requests += 1
            self._counts.methods[method] += 1
            if not self._applies(faults, method, target):
                return faults, "forward"
            if faults.spread:
                chosen = "forward"
                for action in _ACTIONS:
                    self._owed[action] += getattr(faults, action)
                    if chosen == "forward" and self._owed[action] >= 1.0 - 1e-9:
                        self._owed[action] -= 1.0
                        chosen = action
                return faults, chosen
            draw = self._rng.random()
            for action in _ACTIONS:
                share = getattr(faults, action)
                if draw < share:
                    return faults, action
                draw -= share
            return faults, "forward"

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self._counts, name, getattr(self._counts, name) + 1)

    def _handle(
        self,
        client: socket.socket,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> bool:
        """Answer one request; whether the connection stays open."""
        faults, action = self._decide(method, target)
        if faults.latency > 0 and self._applies(faults, method, target):
            self._count("delayed")
            if self._closing.wait(faults.latency):
                raise _Closed
        if action == "hang":
            self._count("hung")
            self._hang(client)
            return False
        if action == "fail":
            self._count("failed")
            self._reply_error(client, 500, "InternalError", method)
        elif action == "throttle":
            self._count("throttled")
            self._reply_error(client, 503, "SlowDown", method)
        else:
            answer = self._forward(method, target, headers, body)
            if answer is None:
                self._count("upstream_errors")
                self._send(client, 502, "Bad Gateway", [], b"upstream unreachable", method)
            elif action == "lose":
                self._count("lost")
                self._reply_error(client, 500, "InternalError", method)
            elif action == "drop":
                self._count("dropped")
                self._hang(client)
                return False
            else:
                self._count("forwarded")
                self._send(client, *answer, method)
        wants_close = any(n.lower() == "connection" and v.lower() == "close" for n, v in headers)
        return version == "HTTP/1.1" and not wants_close

    def _hang(self, client: socket.socket) -> None:
        """Say nothing until the client goes away (or the proxy closes the connection)."""
        client.settimeout(0.2)
        while not self._closing.is_set():
            try:
                if not client.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes] | None:
        upstream = http.client.HTTPConnection(
            LOOPBACK, self._upstream_port, timeout=_UPSTREAM_TIMEOUT
        )
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        except (OSError, http.client.HTTPException):
            return None
        finally:
            upstream.close()

    def _reply_error(self, client: socket.socket, status: int, code: str, method: str) -> None:
        if self.dialect == "azure":
            code = {"SlowDown": "ServerBusy"}.get(code, code)
            message = {
                "ServerBusy": "The server is busy.",
                "InternalError": "The server encountered an internal error. "
                "Please retry the request.",
            }[code]
            headers = [("Content-Type", "application/xml"), ("x-ms-error-code", code)]
        else:
            message = {
                "SlowDown": "Please reduce your request rate.",
                "InternalError": "We encountered an internal error. Please try again.",
            }[code]
            headers = [("Content-Type", "application/xml")]
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}[status]
        self._send(
            client, status, reason, headers, _error_body(self.dialect, code, message), method
        )

    @staticmethod
    def _send(
        client: socket.socket,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        bodiless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or (lowered == "content-length" and not bodiless):
                continue
            lines.append(f"{name}: {value}")
        if not bodiless:
            lines.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        client.sendall(payload if bodiless else payload + body)
