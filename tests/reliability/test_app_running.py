"""What applications do while litetool runs: the replica follows exactly.

One table, one line per case: ``steps`` run in the application's process (see
``app_harness.App``) while litetool replicates; ``other`` steps run in a
second application process, interleaved (``|`` separates the rounds: round i
of ``steps``, then round i of ``other``). Then litetool catches up and stops
(exit 0), and the latest restore equals the live database row for row.

(What applications do while litetool is *stopped* is the table in
tests/integration/continuity/test_app_while_down.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from app_harness import App, Litetool, assert_restores_live


@dataclass(frozen=True)
class Case:
    name: str
    steps: str
    other: str = ""


W = "update 50; commits 30"
CASES = [
    Case("checkpoint-passive", f"{W}; checkpoint PASSIVE | {W} | checkpoint PASSIVE; {W}"),
    Case("checkpoint-full", f"{W}; checkpoint FULL | {W} | checkpoint FULL; {W}"),
    Case("checkpoint-restart", f"{W}; checkpoint RESTART | {W} | checkpoint RESTART; {W}"),
    Case("checkpoint-truncate", f"{W}; checkpoint TRUNCATE | {W} | checkpoint TRUNCATE; {W}"),
    Case("vacuum", f"delete_third; vacuum | {W}; vacuum | insert 500; vacuum"),
    Case("second-application", f"{W} | {W} | {W}", f"{W} | insert 200 | {W}"),
    Case(
        "long-reader-blocks-checkpoints",
        "insert 2000 | insert 2000; update 500 | insert 1000",
        "begin_read | sleep 2 | end_read",
    ),
    Case("close-and-reopen", f"{W}; close; open | {W}; close; open | {W}"),
    Case("big-transaction", "insert 20000 | update 3000 | delete_third"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_replica_follows_what_the_application_does(tmp_path, case, figures):
    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    app = App(db, seed=1)
    app.steps("open; create; insert 3000")
    other = App(db, seed=2) if case.other else None
    lt = Litetool(db, url, tmp_path / "lt.log")
    lt.start()
    try:
        lt.wait_caught_up()
        if other is not None:
            other.steps("open")
        rounds = case.steps.split("|")
        others = case.other.split("|") if case.other else []
        for i, steps in enumerate(rounds):
            app.steps(steps)
            if i < len(others):
                other.steps(others[i])
            figures.add("application_rounds")
        lt.wait_caught_up(timeout=120)
        assert lt.stop() == 0, lt.tail()
        problems = [e for e in lt.events() if e["level"] == "error"]
        assert not problems, problems
        assert_restores_live(url, db, tmp_path / "restored.db")
        figures.set("lost_transactions", 0)
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        app.quit()
        if other is not None:
            other.quit()


def test_a_database_file_replaced_while_litetool_runs_is_followed(tmp_path, figures):
    """An older copy moved over the database (a restore in place, a deploy
    script): litetool notices that the path names another file, says so,
    starts a new generation from it, and replicates what is written to it."""
    import os
    import shutil

    db = tmp_path / "app.db"
    url = (tmp_path / "replica").as_uri()
    app = App(db)
    app.steps("open; create; insert 1000; close")
    older = tmp_path / "older.db"
    shutil.copy(db, older)
    app.steps("open; update 100; commits 20")
    lt = Litetool(db, url, tmp_path / "lt.log")
    lt.start()
    try:
        lt.wait_caught_up()
        app.steps("commits 20; close")
        os.replace(older, db)  # a new inode under the same path
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"app.db{suffix}").unlink(missing_ok=True)
        app.steps("open; commits 30; update 10")
        lt.wait_event("new generation", after="database file replaced")
        lt.wait_caught_up()
        assert lt.stop() == 0, lt.tail()
        events = lt.events()
        reasons = [e["reason"] for e in events if e["event"] == "new generation"]
        assert any("replaced while litetool was running" in r for r in reasons), reasons
        assert_restores_live(url, db, tmp_path / "restored.db")
        figures.set("lost_transactions", 0)
    finally:
        if lt.proc is not None and lt.proc.poll() is None:
            lt.kill()
        app.quit()
