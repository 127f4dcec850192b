"""The object store goes down, slows down, fails, hangs and throttles under a
running ``litetool replicate``.

A writer process commits numbered rows (one transaction per row, ``RATE`` a
second) into a database that a real ``litetool replicate`` replicates to a real
S3 server (moto, SeaweedFS) on 127.0.0.1, through ``faultproxy.FaultProxy``
or with the server process itself stopped and started again. For each fault:

- nothing committed is lost: the latest restore equals the live database row
  for row, and every number the writer committed is in it;
- replication catches up within ``CATCH_UP_LIMIT`` seconds of the store
  coming back (measured from that moment until the replica has published
  every transaction the database had then, and reported);
- the daemon stays up and says what is wrong while it is wrong: the replica's
  state, ``last_error`` and ``sync_errors`` in ``/status``, ``/metrics``, the
  log, and the watchdog's ``stalled`` flag after 10 s without progress;
- it exits 0 once caught up.

Faults given as a fraction run in two phases: first the fraction alone
(replication must go on through it), then every request (the daemon must say
what is wrong), then none (it must catch up). In the short mode fractions are
spread evenly over the requests (0.2: every 5th), so the requests in between
always get through; the long mode draws them at random, for longer.

Errors no retry can heal (bad credentials, a missing bucket) must be reported
as what they are, never as a retryable outage, and must not keep the other
replicas from working.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from app_harness import App, Litetool, assert_same_content, content, restore
from faultproxy import FaultProxy
from rel_common import LONG, scale
from servers import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    SeaweedFSServer,
    Server,
    unique_name,
)

from litetool.errors import (
    OwnRecordExists,
    StorageMisconfigured,
    StorageThrottled,
    StorageUnavailable,
)
from litetool.storage import IndexRecord, Replica, SnapshotEntry
from litetool.storage.lease import Lease

pytestmark = pytest.mark.servers

RATE = 40  # the writer's transactions per second
CATCH_UP_LIMIT = 10.0  # seconds from the store's return to the replica holding it all
STALL_SECONDS = 10.0  # the watchdog's threshold at sync-interval 0s
# Fractions spread evenly in the short mode (deterministic), at random in the long one.
SPREAD = not LONG


def backends(short: str) -> list[str]:
    """The S3 servers a scenario runs on: one in the short mode, both in the long one."""
    return ["moto", "seaweedfs"] if LONG else [short]


@pytest.fixture(autouse=True)
def s3_credentials(monkeypatch):
    """litetool reads the standard variables (a URL never carries secrets); restore
    subprocesses inherit them too. Nothing may probe instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


# -- the writer ------------------------------------------------------------------------------

WRITER = r"""
import signal, sqlite3, sys, time
db, rate = sys.argv[1], float(sys.argv[2])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
conn = sqlite3.connect(db, isolation_level=None, timeout=30)
conn.execute("PRAGMA busy_timeout=30000")
n = first = conn.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0]
started = time.monotonic()
while not stop:
    n += 1
    conn.execute("INSERT INTO t(id, n, v) VALUES (?, ?, ?)", (n, n % 1000, f"row {n}"))
    delay = started + (n - first) / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
conn.close()
print(n)
"""


class Writer:
    """A process committing row n (id = n) after row n - 1, ``rate`` a second."""

    def __init__(self, db: Path, rate: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(rate)], stdout=subprocess.PIPE, text=True
        )

    def stop(self) -> int:
        """Stop after the current commit; the number of the last row committed."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, f"the writer failed ({self.proc.returncode})"
        return int(out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- looking at the daemon -------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def metrics(lt: Litetool, replica: str | None = None) -> dict[str, float]:
    """``/metrics`` as {metric name: value}, for the database's only replica or *replica*."""
    with _OPENER.open(f"http://{lt.addr}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels, value = rest.rsplit("} ", 1)
        if replica is not None and 'replica="' in labels and f'replica="{replica}"' not in labels:
            continue
        values.setdefault(name, float(value))
    return values


@dataclass(frozen=True)
class Sample:
    """One look at ``/status``: the database and its (first or named) replica."""

    t: float
    txid: int
    generation: str | None
    state: str
    replica_generation: str | None
    published: int
    stalled: bool
    sync_errors: int
    last_error: str
    lag: int


def sample(lt: Litetool, replica: str | None = None) -> Sample:
    db = lt.status()["databases"][0]
    r = next(r for r in db["replicas"] if replica is None or r["name"] == replica)
    return Sample(
        time.monotonic(),
        db["txid"],
        db["generation"],
        r["state"],
        r["generation"],
        r["published_txid"],
        r["stalled"],
        r["sync_errors"],
        r["last_error"] or "",
        max(0, db["txid"] - r["published_txid"]),
    )


def watch(lt: Litetool, seconds: float, every: float = 0.2) -> list[Sample]:
    """Samples for *seconds*; the daemon must stay up all along."""
    samples = []
    deadline = time.monotonic() + seconds
    while True:
        assert lt.proc is not None and lt.proc.poll() is None, f"litetool exited: {lt.tail()}"
        samples.append(sample(lt))
        left = deadline - time.monotonic()
        if left <= 0:
            return samples
        time.sleep(min(every, left))


def catch_up(lt: Litetool, since: float) -> float:
    """Seconds from *since* (the store came back) until the replica has published
    every transaction the database had at that moment."""
    target = sample(lt).txid
    while True:
        now = sample(lt)
        if now.replica_generation == now.generation and now.published >= target:
            return now.t - since
        assert now.t - since < 60, f"no catch-up in 60 s: {now}"
        time.sleep(0.05)


def events(lt: Litetool, name: str) -> list[dict]:
    return [e for e in lt.events() if e.get("event") == name]


# -- one replicated database -----------------------------------------------------------------


@dataclass
class Rig:
    tmp: Path
    db: Path
    url: str  # what litetool replicates to (through the proxy, if any)
    restore_url: str  # the server itself
    proxy: FaultProxy | None
    lt: Litetool
    writer: Writer


@contextlib.contextmanager
def replicating(
    tmp_path: Path, server: Server, *, through_proxy: bool = True, options: str = ""
) -> Iterator[Rig]:
    """An application, ``litetool replicate`` (caught up) and the writer running."""
    bucket, prefix = server.create_bucket(), unique_name("p")
    proxy = FaultProxy(server.endpoint, seed=7).start() if through_proxy else None
    endpoint = proxy.endpoint if proxy is not None else server.endpoint
    query = f"?endpoint={endpoint}&region={S3_REGION}{options}"
    db = tmp_path / "app.db"
    app = App(db)
    lt = Litetool(db, f"s3://{bucket}/{prefix}{query}", tmp_path / "litetool.log")
    writer = None
    try:
        app.steps("open; create; insert 50")
        lt.start()
        lt.wait_caught_up()
        writer = Writer(db, RATE)
        rig = Rig(
            tmp_path,
            db,
            lt.url,
            f"s3://{bucket}/{prefix}?endpoint={server.endpoint}&region={S3_REGION}",
            proxy,
            lt,
            writer,
        )
        time.sleep(0.5)  # replicating live before anything goes wrong
        yield rig
    finally:
        if writer is not None:
            writer.kill()
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        if proxy is not None:
            proxy.close()
        app.quit()


def finish(rig: Rig, figures) -> None:
    """Stop the writer, let litetool catch up and stop (exit 0), then restore: the
    restore equals the live database and holds every committed row."""
    committed = rig.writer.stop()
    rig.lt.wait_caught_up(timeout=60)
    code = rig.lt.stop()
    assert code == 0, rig.lt.tail()
    out = rig.tmp / "restored.db"
    result = restore(rig.restore_url, out)
    assert result.returncode == 0, result.stderr
    live_ids = {row[0] for row in content(rig.db)[1]}
    restored_ids = {row[0] for row in content(out)[1]}
    figures.set("transactions", committed)
    figures.set("lost_transactions", len(live_ids - restored_ids))
    if rig.proxy is not None:
        figures.set("requests_seen", rig.proxy.counts.requests)
    assert live_ids == set(range(1, committed + 1)), "the writer's rows are not all live"
    assert_same_content(out, rig.db)
    assert not events(rig.lt, "task failed"), rig.lt.tail()


def server_for(request, backend: str) -> Server:
    return request.getfixturevalue(f"{backend}_server")


# -- the store is down -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", backends("moto"))
def test_store_down_then_back(backend, request, tmp_path, figures):
    """Connections refused for longer than the watchdog's 10 s, then the store is back."""
    outage = scale(12, 90)
    with replicating(tmp_path, server_for(request, backend)) as rig:
        before = sample(rig.lt)
        rig.proxy.down()
        down = watch(rig.lt, outage)
        during = metrics(rig.lt)
        rig.proxy.up()
        back = time.monotonic()
        seconds = catch_up(rig.lt, back)
        resumed = watch(rig.lt, 1.5)
        figures.set("backend", backend)
        figures.set("faults_injected", 1)
        figures.set("outage_seconds", outage)
        figures.set("catch_up_seconds", round(seconds, 2))
        figures.set("sync_errors", down[-1].sync_errors - before.sync_errors)
        finish(rig, figures)
        log = rig.lt.events()
    # Nothing was published while down (a sync that had its answer just before
    # may show up in the first look or two); the daemon said so, and why.
    assert len({s.published for s in down if s.t - down[0].t > 0.5}) == 1
    assert down[-1].txid - down[0].txid >= RATE * (outage - 2), "the writer was held up"
    assert "backoff" in {s.state for s in down}
    assert down[-1].sync_errors - before.sync_errors >= 3
    refused = [s for s in down if "store unreachable: connection refused" in s.last_error]
    assert refused, [s.last_error for s in down]
    assert any(s.stalled for s in down if s.t - down[0].t <= STALL_SECONDS + 2)
    assert during["litetool_replica_stalled"] == 1
    assert during["litetool_replica_sync_errors_total"] >= 3
    assert during["litetool_replica_lag_transactions"] >= RATE * (outage - 3)
    failed = [e["error"] for e in log if e["event"] == "sync failed"]
    assert failed and all("store unreachable" in error for error in failed), failed
    assert any("connection refused" in error for error in failed)
    assert [e for e in log if e["event"] == "replication stalled"]
    # Back: caught up in seconds, the stall cleared and said so.
    assert seconds < CATCH_UP_LIMIT
    assert not resumed[-1].stalled and resumed[-1].state == "ok"
    assert [e for e in log if e["event"] == "replication resumed"]


@pytest.fixture
def own_seaweedfs(tmp_path_factory):
    """A SeaweedFS of this test's own, to stop and start (the session's stays up)."""
    with SeaweedFSServer(tmp_path_factory.mktemp("weed-restart")) as server:
        yield server


@pytest.mark.parametrize("backend", ["moto", "seaweedfs"])
def test_server_process_stopped_and_started(backend, request, tmp_path, figures):
    """Not the proxy: the server process itself stops (its port refuses) and starts
    again on the same port with the same data."""
    server: Server = (
        request.getfixturevalue("moto_server")
        if backend == "moto"
        else request.getfixturevalue("own_seaweedfs")
    )
    outage = scale(4, 30)
    with replicating(tmp_path, server, through_proxy=False) as rig:
        before = sample(rig.lt)
        stopping = time.monotonic()
        server.halt()
        down = watch(rig.lt, outage)
        server.resume()
        back = time.monotonic()
        seconds = catch_up(rig.lt, back)
        figures.set("backend", backend)
        figures.set("faults_injected", 1)
        figures.set("outage_seconds", round(back - stopping, 1))
        figures.set("catch_up_seconds", round(seconds, 2))
        figures.set("sync_errors", down[-1].sync_errors - before.sync_errors)
        finish(rig, figures)
    assert "backoff" in {s.state for s in down}
    assert any("store unreachable: connection refused" in s.last_error for s in down)
    assert down[-1].published < down[-1].txid
    assert seconds < CATCH_UP_LIMIT


# -- faults on a fraction of the requests, then on all of them --------------------------------


@dataclass
class Phases:
    partial: list[Sample]
    partial_faults: int
    total: list[Sample]
    total_metrics: dict[str, float]
    catch_up_seconds: float


def run_phases(
    rig: Rig, *, partial: dict, total: dict, partial_seconds: float, total_seconds: float
) -> Phases:
    """The fraction (replication must go on), then every request (the daemon must say
    so), then no faults (it must catch up)."""
    proxy = rig.proxy
    assert proxy is not None
    proxy.set(**partial, spread=SPREAD)
    faults_before = proxy.counts.faults
    partial_samples = watch(rig.lt, partial_seconds)
    partial_faults = proxy.counts.faults - faults_before
    proxy.set(**total)
    total_samples = watch(rig.lt, total_seconds)
    total_metrics = metrics(rig.lt)
    proxy.pass_through()
    seconds = catch_up(rig.lt, time.monotonic())
    return Phases(partial_samples, partial_faults, total_samples, total_metrics, seconds)


def went_on(samples: list[Sample]) -> bool:
    """Replication published everything the database had when the phase began."""
    return max(s.published for s in samples) >= samples[0].txid


def report(figures, backend: str, rig: Rig, phases: Phases) -> None:
    figures.set("backend", backend)
    figures.set("faults_injected", rig.proxy.counts.faults)
    figures.set("faults_in_partial_phase", phases.partial_faults)
    figures.set("catch_up_seconds", round(phases.catch_up_seconds, 2))
    figures.set("sync_errors", phases.total[-1].sync_errors)
    figures.set("max_lag_transactions", max(s.lag for s in phases.partial + phases.total))


def said(samples: list[Sample], words: str) -> bool:
    return any(words in s.last_error and s.state == "backoff" for s in samples)


@pytest.mark.parametrize("backend", backends("moto"))
def test_failing_requests(backend, request, tmp_path, figures):
    """500 InternalError on a fifth of the requests, then on all of them."""
    with replicating(tmp_path, server_for(request, backend)) as rig:
        phases = run_phases(
            rig,
            partial={"fail": 0.2},
            total={"fail": 1.0},
            partial_seconds=scale(5, 30),
            total_seconds=scale(3, 15),
        )
        report(figures, backend, rig, phases)
        finish(rig, figures)
    assert phases.partial_faults >= 20
    assert went_on(phases.partial)
    assert said(phases.total, "the store failed the request (HTTP 500 InternalError)")
    assert phases.total_metrics["litetool_replica_sync_errors_total"] >= 1
    assert phases.catch_up_seconds < CATCH_UP_LIMIT


@pytest.mark.parametrize("backend", backends("seaweedfs"))
def test_throttled_with_slowdown(backend, request, tmp_path, figures):
    """503 SlowDown on half of the requests, then on all of them."""
    with replicating(tmp_path, server_for(request, backend)) as rig:
        phases = run_phases(
            rig,
            partial={"throttle": 0.5},
            total={"throttle": 1.0},
            partial_seconds=scale(5, 30),
            total_seconds=scale(3, 15),
        )
        report(figures, backend, rig, phases)
        finish(rig, figures)
    assert phases.partial_faults >= 20
    assert went_on(phases.partial)
    assert said(phases.total, "the store is throttling requests (HTTP 503 SlowDown)")
    assert not any("unreachable" in s.last_error for s in phases.total)
    assert phases.catch_up_seconds < CATCH_UP_LIMIT


@pytest.mark.parametrize("backend", backends("seaweedfs"))
def test_hanging_requests(backend, request, tmp_path, figures):
    """A tenth of the requests accepted and never answered, then all of them, with a
    2 s request timeout (the default is 30 s: each hung request would hold
    replication that long)."""
    with replicating(tmp_path, server_for(request, backend), options="&timeout_seconds=2") as rig:
        phases = run_phases(
            rig,
            partial={"hang": 0.1},
            total={"hang": 1.0},
            partial_seconds=scale(5, 30),
            total_seconds=scale(5, 15),
        )
        report(figures, backend, rig, phases)
        figures.set("hung", rig.proxy.counts.hung)
        finish(rig, figures)
    assert phases.partial_faults >= 1  # each costs 2 s: few fit in the phase
    assert went_on(phases.partial)
    assert said(phases.total, "store unreachable: no answer within the request timeout")
    assert phases.catch_up_seconds < CATCH_UP_LIMIT


@pytest.mark.parametrize("backend", backends("seaweedfs"))
def test_slow_answers(backend, request, tmp_path, figures):
    """Every answer 0.3 s late: slower, never wrong, no error."""
    with replicating(tmp_path, server_for(request, backend)) as rig:
        rig.proxy.set(latency=0.3)
        slow = watch(rig.lt, scale(6, 30))
        rig.proxy.pass_through()
        seconds = catch_up(rig.lt, time.monotonic())
        figures.set("backend", backend)
        figures.set("requests_delayed", rig.proxy.counts.delayed)
        figures.set("catch_up_seconds", round(seconds, 2))
        figures.set("max_lag_transactions", max(s.lag for s in slow))
        finish(rig, figures)
    assert went_on(slow)
    assert {s.sync_errors for s in slow} == {slow[0].sync_errors}
    assert {s.state for s in slow} <= {"ok", "snapshotting"}
    assert max(s.lag for s in slow) >= RATE * 0.3  # a sync took at least a delayed PUT
    assert seconds < CATCH_UP_LIMIT


@pytest.mark.parametrize("backend", backends("moto"))
def test_answers_lost_after_the_write(backend, request, tmp_path, figures):
    """The store does the write, the answer never arrives (a timeout) or is replaced
    by a 500. The retry finds the object, or the index record, already there:
    content-addressed objects are simply there; a record of ours with other
    contents (rebuilt with more transactions) is taken as ours and the replica
    continues from it. (It used to be taken for another writer's: replication
    stopped for good in state "conflict".)"""
    with replicating(tmp_path, server_for(request, backend), options="&timeout_seconds=2") as rig:
        # Every index record write is stored and never answered.
        rig.proxy.set(drop=1.0, methods={"PUT"}, path_contains="/index/")
        dropped = watch(rig.lt, scale(4, 10))
        # A third of all writes are stored and answered 500.
        rig.proxy.set(lose=0.3, methods={"PUT"}, spread=SPREAD)
        lost = watch(rig.lt, scale(6, 30))
        rig.proxy.pass_through()
        seconds = catch_up(rig.lt, time.monotonic())
        counts = rig.proxy.counts
        own = events(rig.lt, "record already stored")
        figures.set("backend", backend)
        figures.set("faults_injected", counts.faults)
        figures.set("answers_dropped", counts.dropped)
        figures.set("answers_lost", counts.lost)
        figures.set("catch_up_seconds", round(seconds, 2))
        figures.set("own_records_found", len(own))
        finish(rig, figures)
    assert counts.dropped >= 1 and counts.lost >= 10
    assert said(dropped, "no answer within the request timeout")
    assert own, rig.lt.tail()
    assert "conflict" not in {s.state for s in dropped + lost}
    assert went_on(lost)
    assert seconds < CATCH_UP_LIMIT


# -- errors no retry can heal ----------------------------------------------------------------


def _toml(value) -> str:
    return f'"{value}"'


def test_misconfigured_replicas_are_reported_as_such(
    moto_server, seaweedfs_server, tmp_path, figures
):
    """A missing bucket (moto, SeaweedFS) and wrong credentials (SeaweedFS; moto accepts
    any) next to a working replica: each is reported as what it is, none as an
    outage, and the working replica keeps everything."""
    db = tmp_path / "app.db"
    good_bucket = moto_server.create_bucket()
    replicas = {
        "good": (f"s3://{good_bucket}/p", moto_server, S3_SECRET_ACCESS_KEY),
        "moto-missing-bucket": (
            f"s3://{unique_name('missing')}/p",
            moto_server,
            S3_SECRET_ACCESS_KEY,
        ),
        "weed-missing-bucket": (
            f"s3://{unique_name('missing')}/p",
            seaweedfs_server,
            S3_SECRET_ACCESS_KEY,
        ),
        "weed-wrong-secret": (
            f"s3://{seaweedfs_server.create_bucket()}/p",
            seaweedfs_server,
            "not-the-secret",
        ),
    }
    tables = "".join(
        f"""
  [[databases.replicas]]
  name = {_toml(name)}
  url = {_toml(url)}
  sync-interval = "0s"
  endpoint = {_toml(server.endpoint)}
  region = {_toml(S3_REGION)}
  access-key-id = {_toml(S3_ACCESS_KEY_ID)}
  secret-access-key = {_toml(secret)}
"""
        for name, (url, server, secret) in replicas.items()
    )
    config = tmp_path / "litetool.toml"
    config.write_text(f"[[databases]]\npath = {_toml(db)}\n{tables}")
    app = App(db)
    lt = Litetool(db, "", tmp_path / "litetool.log", config=config)
    try:
        app.steps("open; create; insert 50")
        lt.start()
        app.steps("commits 100")
        deadline = time.monotonic() + 30
        while True:
            states = {name: sample(lt, name) for name in replicas}
            bad = [states[name] for name in replicas if name != "good"]
            if all(s.sync_errors >= 2 for s in bad) and states["good"].published == bad[0].txid:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
        during = {name: metrics(lt, name) for name in replicas}
        code = lt.stop()
        log = lt.events()
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        app.quit()
    figures.set("faults_injected", len(bad))
    figures.set("sync_errors", sum(s.sync_errors for s in bad))
    assert code == 0, lt.tail()  # the good replica has every transaction
    assert states["good"].state == "ok" and states["good"].sync_errors == 0
    for name in ("moto-missing-bucket", "weed-missing-bucket"):
        assert "does not exist (NoSuchBucket)" in states[name].last_error, states[name]
        assert "create it, or correct the replica URL" in states[name].last_error
    wrong = states["weed-wrong-secret"].last_error
    assert "permission denied (HTTP 403 SignatureDoesNotMatch)" in wrong, wrong
    assert "check the credentials" in wrong
    for name in replicas:
        if name != "good":
            assert "unreachable" not in states[name].last_error
            assert "will try again" not in states[name].last_error
            assert during[name]["litetool_replica_sync_errors_total"] >= 2
            assert not any(
                "unreachable" in e["error"]
                for e in log
                if e["event"] == "sync failed" and e.get("replica") == name
            )
    out = tmp_path / "restored.db"
    result = restore(
        f"s3://{good_bucket}/p?endpoint={moto_server.endpoint}&region={S3_REGION}", out
    )
    assert result.returncode == 0, result.stderr
    live_ids = {row[0] for row in content(db)[1]}
    figures.set("transactions", len(live_ids))
    figures.set("lost_transactions", len(live_ids - {row[0] for row in content(out)[1]}))
    assert_same_content(out, db)


@pytest.mark.parametrize("backend", ["moto", "seaweedfs"])
def test_restore_from_a_missing_bucket_is_an_error_not_an_empty_replica(backend, request, tmp_path):
    """``--if-replica-exists`` exits 0 when there is no backup yet (a first deploy);
    a misspelled bucket is not that: it used to restore nothing and exit 0."""
    server = server_for(request, backend)
    url = f"s3://{unique_name('missing')}/p?endpoint={server.endpoint}&region={S3_REGION}"
    result = restore(url, tmp_path / "out.db", "--if-replica-exists")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "does not exist (NoSuchBucket)" in result.stderr
    assert not (tmp_path / "out.db").exists()


# -- the storage layer against real servers, through the proxy -------------------------------


@pytest.mark.parametrize("backend", ["moto", "seaweedfs", "azurite"])
async def test_each_fault_is_named_on_each_server(backend, request, figures):
    """What each fault becomes in litetool's words, on each real server."""
    server = server_for(request, backend)
    dialect = "azure" if backend == "azurite" else "s3"
    bucket = server.create_bucket()
    scheme = "az" if backend == "azurite" else "s3"
    throttled = "ServerBusy" if backend == "azurite" else "SlowDown"
    with FaultProxy(server.endpoint, dialect=dialect) as proxy:
        options = {
            **server.options,
            "endpoint": proxy.endpoint,
            "max_retries": 1,
            "timeout_seconds": 1,
        }
        replica = Replica.open(f"{scheme}://{bucket}/p", options)
        cases = [
            (
                {"fail": 1.0},
                StorageUnavailable,
                "the store failed the request (HTTP 500 InternalError)",
            ),
            ({"throttle": 1.0}, StorageThrottled, f"throttling requests (HTTP 503 {throttled})"),
            ({"hang": 1.0}, StorageUnavailable, "no answer within the request timeout"),
            ("down", StorageUnavailable, "store unreachable: connection refused"),
        ]
        for faults, kind, words in cases:
            if faults == "down":
                proxy.down()
            else:
                proxy.set(**faults)
            with pytest.raises(kind) as info:
                await replica.ensure_format(create=True)
            assert words in info.value.message, info.value.message
            assert info.value.retryable
            proxy.pass_through()
        assert await replica.ensure_format(create=True) == 1  # and then it works
        missing = Replica.open(f"{scheme}://{unique_name('missing')}/p", options)
        with pytest.raises(StorageMisconfigured) as info:
            await missing.ensure_format(create=True)
        assert "does not exist" in info.value.message and not info.value.retryable
        # What a replica waiting out an outage asks: does the store answer at all?
        assert await replica.probe() and await missing.probe()  # any answer counts
        for faults in ({"fail": 1.0}, "down"):
            proxy.down() if faults == "down" else proxy.set(**faults)
            assert not await replica.probe()
            proxy.pass_through()
        figures.set("faults_injected", proxy.counts.faults + proxy.counts.outages)
        figures.set("requests_seen", proxy.counts.requests)


@pytest.mark.parametrize("backend", ["seaweedfs", "azurite"])  # moto accepts any
async def test_wrong_credentials_are_misconfigured_on_each_server(backend, request):
    server = server_for(request, backend)
    bucket = server.create_bucket()
    if backend == "azurite":
        url, wrong = f"az://{bucket}/p", {"account_key": "d3Jvbmcta2V5LXdyb25nLWtleQ=="}
    else:
        url, wrong = f"s3://{bucket}/p", {"secret_access_key": "not-the-secret"}
    replica = Replica.open(url, {**server.options, **wrong, "max_retries": 1})
    with pytest.raises(StorageMisconfigured) as info:
        await replica.ensure_format(create=True)
    assert "permission denied (HTTP 403" in info.value.message, info.value.message
    assert not info.value.retryable and "check the credentials" in info.value.hint


async def test_a_lost_answer_to_our_own_write_is_recognised(moto_server, figures):
    """The lease renewal and the index record are conditional writes: when the store
    did one and its answer was lost, the next attempt meets our own write. The
    lease used to be taken for lost to another writer (replication stopped in
    state "conflict"), the record for another writer's."""
    bucket = moto_server.create_bucket()
    with FaultProxy(moto_server.endpoint) as proxy:
        options = {
            **moto_server.options,
            "endpoint": proxy.endpoint,
            "max_retries": 0,
            "timeout_seconds": 1,
        }
        replica = Replica.open(f"s3://{bucket}/p", options)
        await replica.ensure_format(create=True)
        generation = "0" * 16
        lease = await replica.acquire_lease("host:me", 60, generation)
        half_life = lease.expires_us - lease.ttl_us // 2 + 1
        for fault in ({"drop": 1.0}, {"lose": 1.0}):
            # The renewal is stored; its answer never comes, or comes as a 500.
            proxy.set(**fault, methods={"PUT"}, path_contains="lease.json")
            with pytest.raises(StorageUnavailable):
                await replica.renew_lease_if_needed(lease, now_us=half_life)
            proxy.pass_through()
            renewed = await replica.renew_lease_if_needed(lease, now_us=half_life + 1000)
            assert isinstance(renewed, Lease) and renewed.expires_us > lease.expires_us
            assert (await replica.read_lease()).expires_us == renewed.expires_us
            lease = renewed
            half_life = lease.expires_us - lease.ttl_us // 2 + 1

        snapshot = SnapshotEntry("a" * 64, 10, 1_000_000, 4096, 2, 100)
        first = IndexRecord(generation, 0, 1_000, "host:me", snapshots=(snapshot,))
        proxy.set(drop=1.0, methods={"PUT"}, path_contains="/index/")
        with pytest.raises(StorageUnavailable):
            await replica.publish_record(first)
        proxy.pass_through()
        await replica.publish_record(first)  # the same record again: done
        rebuilt = IndexRecord(generation, 0, 2_000, "host:me", snapshots=(snapshot,))
        with pytest.raises(OwnRecordExists) as info:
            await replica.publish_record(rebuilt)  # other contents, ours
        assert info.value.seq == 0
        figures.set("faults_injected", proxy.counts.faults)
        figures.set("requests_seen", proxy.counts.requests)
