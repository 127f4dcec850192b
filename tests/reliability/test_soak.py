"""Soak: a steady writer, faults now and then, and no growth.

An application commits at about 100 tx/s (one row each, a batch update now
and then) while ``litetool replicate`` runs for ``scale(25 s, 1 h)``. Faults
come at random moments: litetool killed with SIGKILL and restarted, an
application checkpoint in a random mode, a VACUUM. litetool's RSS and open
file descriptors are sampled every second; within each life of the process
(after a 5 s warm-up) neither may grow: RSS by at most 24 MB, descriptors by
at most 4. At the end, the latest restore equals the live database.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from app_harness import App, Litetool, assert_restores_live
from rel_common import LONG, scale

WARM_UP_SECONDS = 5.0
RSS_SLACK_BYTES = 24 << 20
FD_SLACK = 4


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


def test_soak_with_faults_has_no_growth(tmp_path, figures):
    rng = random.Random(7)
    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    app = App(db)
    app.steps("open; create; insert 2000")
    log = tmp_path / "litetool.log"
    lt = Litetool(db, url, log)
    lt.start()
    duration = scale(25, 3600)
    fault_every = (5.0, 12.0) if not LONG else (60.0, 300.0)
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
            if now >= next_fault:
                next_fault = now + rng.uniform(*fault_every)
                fault = rng.choice(["kill", "checkpoint", "vacuum", "update"])
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
                else:
                    app.steps("update 300")
            time.sleep(0.1)
        lt.wait_caught_up(timeout=120)
        assert lt.stop() == 0, lt.tail()
        assert_restores_live(url, db, tmp_path / "restored.db")
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        app.quit()
    growth_rss, growth_fds, checked = 0, 0, 0
    for life in lives:
        settled = [s for s in life if s[0] - life[0][0] >= WARM_UP_SECONDS] if life else []
        if len(settled) < 3:
            continue
        checked += 1
        rss = [s[1] for s in settled]
        fds = [s[2] for s in settled]
        growth_rss = max(growth_rss, max(rss[len(rss) // 2 :]) - min(rss[: len(rss) // 2 + 1]))
        growth_fds = max(growth_fds, max(fds) - fds[0])
    figures.set("seconds_soaked", duration)
    figures.set("process_lives", len(lives))
    figures.set("lives_checked", checked)
    figures.set("rss_growth_mb", round(growth_rss / 2**20, 1))
    figures.set("fd_growth", growth_fds)
    figures.set("peak_rss_mb", round(max(s[1] for life in lives for s in life) / 2**20, 1))
    figures.set("lost_transactions", 0)
    assert checked >= 1, "no life of litetool was long enough to measure"
    assert growth_rss <= RSS_SLACK_BYTES, f"RSS grew by {growth_rss / 2**20:.1f} MB"
    assert growth_fds <= FD_SLACK, f"open descriptors grew by {growth_fds}"
