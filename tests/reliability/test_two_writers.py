"""Two replicators on one database and one replica: the second never writes.

- Same host, same spool: the spool's lock refuses the second at once.
- Separate spools (what two hosts sharing a database file and a bucket look
  like): the replica's writer lease refuses the second; it says so and exits
  non-zero instead of retrying forever.

The first goes on, and the replica stays restorable and exact.
"""

from __future__ import annotations

import subprocess
import sys
import time

from app_harness import App, Litetool, assert_restores_live


def config(path, db, url, spool) -> None:
    path.write_text(
        f"""
[[databases]]
path = "{db}"
spool-dir = "{spool}"
  [[databases.replicas]]
  url = "{url}"
  sync-interval = "0s"
"""
    )


def test_a_second_replicator_is_refused_and_exits_non_zero(tmp_path, figures):
    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    app = App(db)
    app.steps("open; create; insert 500")
    first = Litetool(db, url, tmp_path / "first.log")
    first.start()
    try:
        first.wait_caught_up()
        app.steps("commits 50")
        # Same spool: refused by its lock before anything else happens.
        same = subprocess.run(
            [sys.executable, "-m", "litetool", "replicate", str(db), url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert same.returncode == 1, same.stderr
        assert "already being replicated" in same.stderr
        assert len(same.stderr.strip().splitlines()) == 1, same.stderr
        figures.add("refused_same_spool")
        # Another spool (another host): the replica's lease refuses it.
        other = tmp_path / "other.toml"
        config(other, db, url, tmp_path / "other-spool")
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "litetool", "daemon", "--config", str(other)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        figures.set("second_exit_seconds", round(time.monotonic() - started, 2))
        assert second.returncode != 0, second.stderr
        assert "another litetool owns the replica" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        figures.add("refused_other_spool")
        # The first goes on as if nothing happened.
        app.steps("commits 50; update 20")
        first.wait_caught_up()
        assert first.stop() == 0, first.tail()
        assert not [e for e in first.events() if e["level"] == "error"], first.tail()
        assert_restores_live(url, db, tmp_path / "restored.db")
    finally:
        if first.proc is not None and first.proc.poll() is None:
            first.kill()
        app.quit()
