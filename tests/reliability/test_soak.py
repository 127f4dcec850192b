"""Soak: a steady writer, faults now and then, and no growth.

An application commits at about 100 tx/s (one row each, a batch update now
and then) while ``litetool replicate`` replicates it to a real S3 server
(SeaweedFS, started by the suite) through the fault-injecting proxy, for
``scale(25 s, 1 h)``. Faults from every part of the suite come at random
moments: litetool killed with SIGKILL and restarted (crash); an application
checkpoint in a random mode, a VACUUM, a batch update (what applications
do); the store refusing connections, failing a fraction of requests with
500, throttling with 503 SlowDown, or answering slowly, each for a few
seconds (storage). Damaged replica objects are not among them: a damaged
object makes the exact restore this test ends with impossible by design;
``test_corruption.py`` covers them. litetool's RSS and open file descriptors
are sampled every second; within each life of the process (after a 5 s
warm-up) neither may grow: the median of a life's last third may exceed that
of its first third by at most 24 MB of RSS and 12 descriptors. Medians, not
extremes: a VACUUM of the grown database is one transaction of its whole size,
built in memory for a second or two (a spike, reported as the peak); growth
is what stays (the long soak found 51 MB kept after such VACUUMs). The
descriptors swing with the store client's pool of idle connections, one per
request that was in flight at once (at most the replica's concurrency, 8):
a life that began with 31 descriptors holds 40 after its first snapshot or
catch-up, and back to 31 once the pool lets them go; a leak of one per
request or per fault would pass 12 within minutes (100,000 requests an hour).
``LITETOOL_SOAK_SECONDS`` sets the soak's length by hand.
At the end, the latest restore equals the live database.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from statistics import median

import pytest
from app_harness import App, Litetool, assert_restores_live
from faultproxy import FaultProxy
from rel_common import LONG, scale
from servers import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, unique_name

from litetool.storage.concurrency import DEFAULT_CONCURRENCY

pytestmark = pytest.mark.servers

WARM_UP_SECONDS = 5.0
RSS_SLACK_BYTES = 24 << 20
FD_SLACK = DEFAULT_CONCURRENCY + 4  # the connection pool's bound, and a few
STORE_FAULTS = ("down", "fail", "throttle", "slow")


def sample(pid: int) -> tuple[int, int] | None:
    """(RSS bytes, open descriptors) of a process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024, fds
    return None


def store_fault(proxy: FaultProxy, fault: str) -> None:
    """Start one of ``STORE_FAULTS`` on the proxy (``proxy.up()`` and
    ``proxy.pass_through()`` end it)."""
    if fault == "down":
        proxy.down()
    elif fault == "fail":
        proxy.set(fail=0.3)
    elif fault == "throttle":
        proxy.set(throttle=0.5)
    else:
        proxy.set(latency=0.3)


@pytest.mark.timeout(scale(300, 2 * 3600))  # the long mode runs far past the suite's 300 s
def test_soak_with_faults_has_no_growth(tmp_path, figures, seaweedfs_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    rng = random.Random(7)
    db = tmp_path / "app.db"
    bucket, prefix = seaweedfs_server.create_bucket(), unique_name("soak")
    proxy = FaultProxy(seaweedfs_server.endpoint, seed=7).start()
    url = f"s3://{bucket}/{prefix}?endpoint={proxy.endpoint}&region={S3_REGION}"
    direct = f"s3://{bucket}/{prefix}?endpoint={seaweedfs_server.endpoint}&region={S3_REGION}"
    store_fault_ends = 0.0  # when the store fault under way (if any) ends
    app = App(db)
    app.steps("open; create; insert 2000")
    log = tmp_path / "litetool.log"
    lt = Litetool(db, url, log)
    lt.start()
    duration = float(os.environ.get("LITETOOL_SOAK_SECONDS", scale(25, 3600)))
    fault_every = (3.0, 8.0) if not LONG else (20.0, 90.0)
    lives: list[list[tuple[float, int, int]]] = [[]]
    started = time.monotonic()
    next_fault = started + rng.uniform(*fault_every)
    next_sample = started
    try:
        while time.monotonic() - started < duration:
            app.steps("commits 10")
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + 1.0
                assert lt.proc is not None
                measured = sample(lt.proc.pid)
                if measured is not None:
                    lives[-1].append((now - started, *measured))
            if store_fault_ends and now >= store_fault_ends:
                store_fault_ends = 0.0
                proxy.pass_through()
            if now >= next_fault:
                next_fault = now + rng.uniform(*fault_every)
                kinds = ["kill", "checkpoint", "vacuum", "update"]
                fault = rng.choice(kinds if store_fault_ends else [*kinds, "store"])
                if fault == "store":  # one store fault at a time
                    fault = f"store_{rng.choice(STORE_FAULTS)}"
                    store_fault(proxy, fault.removeprefix("store_"))
                    store_fault_ends = now + rng.uniform(2.0, 4.0 if not LONG else 40.0)
                figures.add(f"faults_{fault}")
                if fault == "kill":
                    lt.kill()
                    lt = Litetool(db, url, log)
                    lt.start()
                    lives.append([])
                elif fault == "checkpoint":
                    app.steps(
                        f"checkpoint {rng.choice(['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'])}"
                    )
                elif fault == "vacuum":
                    app.steps("vacuum")
                elif fault == "update":
                    app.steps("update 300")
            time.sleep(0.1)
        proxy.pass_through()
        lt.wait_caught_up(timeout=120)
        assert lt.stop() == 0, lt.tail()
        assert_restores_live(direct, db, tmp_path / "restored.db")
        figures.set("store_requests", proxy.counts.requests)
        figures.set("store_requests_faulted", proxy.counts.faults)
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        proxy.close()
        app.quit()
    growth_rss, growth_fds, checked = 0, 0, 0
    for life in lives:
        settled = [s for s in life if s[0] - life[0][0] >= WARM_UP_SECONDS] if life else []
        if len(settled) < 3:
            continue
        checked += 1
        third = max(1, len(settled) // 3)
        early, late = settled[:third], settled[-third:]
        growth_rss = max(growth_rss, median(s[1] for s in late) - median(s[1] for s in early))
        growth_fds = max(growth_fds, median(s[2] for s in late) - median(s[2] for s in early))
    figures.set("seconds_soaked", duration)
    figures.set("process_lives", len(lives))
    figures.set("lives_checked", checked)
    figures.set("rss_growth_mb", round(growth_rss / 2**20, 1))
    figures.set("fd_growth", round(growth_fds, 1))
    figures.set("peak_rss_mb", round(max(s[1] for life in lives for s in life) / 2**20, 1))
    figures.set("lost_transactions", 0)
    assert checked >= 1, "no life of litetool was long enough to measure"
    assert growth_rss <= RSS_SLACK_BYTES, f"RSS grew by {growth_rss / 2**20:.1f} MB"
    assert growth_fds <= FD_SLACK, f"open descriptors grew by {growth_fds}"
