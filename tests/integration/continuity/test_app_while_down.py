"""What an application does while litetool is stopped or killed: nothing is lost.

One table, one line per case. Each case:

1. the application (its own process) creates a 3000-row database;
2. litetool replicates it until caught up; ``before`` runs meanwhile (e.g.
   commits that are still in the WAL when litetool stops);
3. litetool stops (``term``: SIGTERM, final sync) or is killed (``kill``, or
   ``crash:<point>``: SIGKILL by itself at a crash point);
4. ``down`` runs while litetool is not running: application steps (see
   ``app_harness.App``) and file operations (``@name``, below);
5. litetool starts again, catches up and stops with SIGTERM (exit 0);
6. the latest restore equals the live database, schema and row for row, and
   litetool decided as ``expect`` says: resume the generation (``resume``), or
   start a new one with a reason in its log (``new``); ``None`` when either
   is right (SQLite's automatic checkpoints decide).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from app_harness import App, Litetool, assert_restores_live


@dataclass(frozen=True)
class Case:
    name: str
    down: str
    before: str = ""
    stop: str = "term"
    expect: str | None = None


SIX = [
    ("update-truncate", "update 100; checkpoint TRUNCATE"),
    ("update-passive", "update 100; checkpoint PASSIVE"),
    ("update-restart-insert", "update 100; checkpoint RESTART; insert 50"),
    ("insert-truncate", "insert 50; checkpoint TRUNCATE"),
    ("update-close", "update 100; close"),
    ("delete-vacuum", "delete_third; vacuum"),
]
FRAMES = "commits 20"  # still in the WAL when litetool stops
BIG = "commits 1500"  # enough for litetool's own checkpoint
# The same, with the application's own automatic checkpoint off: litetool may
# crash at its checkpoint while the application still has hundreds of commits
# to go (under load), and an application checkpoint after the crash followed by
# a WAL restart can only be met with a new generation. Without it, what the
# crash leaves is provable, and must be resumed.
BIG_QUIET = "autocheckpoint 0; commits 1500"
AFTER_CKPT, MID_CKPT = "crash:checkpoint-done", "crash:checkpoint-locked"

CASES = [
    # The six ways found to lose data, with litetool stopped while the WAL was
    # empty (the application wrote nothing since litetool's last look) ...
    *[Case(name, down) for name, down in SIX],
    # ... and while the WAL held frames litetool had captured.
    *[Case(f"{name}/frames", down, FRAMES) for name, down in SIX],
    Case("nothing", "", FRAMES, expect="resume"),
    Case("appends-only", "commits 30", FRAMES, expect="resume"),
    Case("open-close-no-writes", "close; open", FRAMES, expect="resume"),
    Case("page-size", "page_size 8192", expect="new"),
    Case("journal-delete-and-back", "journal_mode DELETE; update 10; journal_mode WAL"),
    Case("replaced-by-other", "close; @replace_with_other; open", expect="new"),
    Case("replaced-by-older-copy", "close; @replace_with_older; open", expect="new"),
    Case("replaced-by-older-copy/frames", "close; @replace_with_older; open", FRAMES),
    Case("spool-deleted", "update 10; @delete_spool", FRAMES, expect="new"),
    Case("killed", "commits 30", FRAMES, "kill"),
    Case("killed-then-truncate", "update 50; checkpoint TRUNCATE", FRAMES, "kill"),
    Case("crash-after-checkpoint", "commits 30", BIG_QUIET, AFTER_CKPT, "resume"),
    Case("crash-after-checkpoint-truncate", "update 20; checkpoint TRUNCATE", BIG, AFTER_CKPT),
    Case("crash-mid-checkpoint", "commits 30", BIG_QUIET, MID_CKPT, "resume"),
    Case("crash-mid-checkpoint-close", "update 20; close", BIG, MID_CKPT),
]


class Scene:
    """One case's database, replica, application and litetool."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.db = tmp_path / "app.db"
        self.url = (tmp_path / "replica").as_uri()
        self.app = App(self.db)
        self.older = tmp_path / "older.db"

    def file_op(self, name: str) -> None:
        getattr(self, name)()

    def replace_with_other(self) -> None:
        """Another database of the same size and page count, in place."""
        other = self.dir / "other.db"
        size = self.db.stat().st_size
        conn = sqlite3.connect(other)
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INT, v TEXT)")
        conn.execute("CREATE INDEX t_n ON t(n)")
        i = 0
        while other.stat().st_size < size:
            conn.executemany(
                "INSERT INTO t(n, v) VALUES (?, ?)", [(j, "o" * 100) for j in range(i, i + 50)]
            )
            conn.commit()
            i += 50
        conn.close()
        with open(other, "r+b") as handle:
            handle.truncate(size)  # same size, same page count in the header
        data = bytearray(other.read_bytes())
        data[28:32] = (size // int.from_bytes(data[16:18], "big")).to_bytes(4, "big")
        self._overwrite(bytes(data))

    def replace_with_older(self) -> None:
        self._overwrite(self.older.read_bytes())

    def _overwrite(self, data: bytes) -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        with open(self.db, "r+b") as handle:  # in place: same inode
            handle.write(data)
            handle.truncate(len(data))

    def delete_spool(self) -> None:
        shutil.rmtree(self.dir / ".app.db-litetool")

    def run_steps(self, script: str) -> None:
        for part in script.split(";"):
            part = part.strip()
            if part.startswith("@"):
                self.file_op(part[1:])
            elif part:
                self.app.steps(part)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_restore_equals_the_live_database(tmp_path, case):
    scene = Scene(tmp_path)
    app = scene.app
    log = tmp_path / "litetool.log"
    try:
        app.steps("open; create; insert 3000; close")
        # An older copy of the database, for the cases that put it back.
        shutil.copy(scene.db, scene.older)
        app.steps("open; update 5")
        if not case.before:
            app.steps("close")
        env = {}
        if case.stop.startswith("crash:"):
            env["LITETOOL_CRASH_AT"] = case.stop.split(":", 1)[1]
        first = Litetool(scene.db, scene.url, log, env=env)
        first.start()
        first.wait_caught_up()
        if case.before:
            app.steps(case.before)
            if case.stop == "term":
                first.wait_caught_up()
        if case.stop == "term":
            assert first.stop() == 0, first.tail()
        elif case.stop == "kill":
            first.wait_caught_up()
            first.kill()
        else:
            assert first.proc is not None
            code = first.proc.wait(timeout=60)
            assert code == -9, f"litetool did not crash at {case.stop}: {code}\n{first.tail()}"
        if not case.before:
            app.steps("open")
        scene.run_steps(case.down)

        second = Litetool(scene.db, scene.url, log)
        second.start()
        second.wait_caught_up()
        events = second.events()
        assert second.stop() == 0, second.tail()

        assert_restores_live(scene.url, scene.db, tmp_path / "restored.db")

        decided = [e for e in events if e["event"] in ("resumed", "new generation")]
        assert decided, second.tail()
        if case.expect == "resume":
            assert decided[0]["event"] == "resumed", decided[0].get("reason")
        elif case.expect == "new":
            assert decided[0]["event"] == "new generation", decided
            assert decided[0]["reason"], decided
    finally:
        app.quit()
