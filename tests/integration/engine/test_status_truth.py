"""Status tells the truth about what was captured, also when a snapshot did it.

A replica's first snapshot captures the WAL's tail under the write lock
(``Capture.open_snapshot``), outside the capture loop's own captures. Status
once kept the txid from before that tail (below what the replica published
from the snapshot) until the application's next commit: an application that
went quiet right after litetool started looked forever behind its replica,
and ``wait_caught_up`` never returned. Started against a burst, several
times (the snapshot lands inside the burst about half of the time).
"""

from __future__ import annotations

import time

from app_harness import App, Litetool


def agreed_txid(lt: Litetool, attempt: int) -> int:
    """The txid once status and the replica agree on it twice, 0.2 s apart."""
    deadline = time.monotonic() + 30
    agreed: list[int] = []
    while len(agreed) < 2 or agreed[-1] != agreed[-2]:
        status = lt.status()["databases"][0]
        ok = [r["published_txid"] for r in status["replicas"] if r["state"] == "ok"]
        if ok and ok[0] == status["txid"]:
            agreed.append(status["txid"])
        assert time.monotonic() < deadline, (attempt, status["txid"], ok)
        time.sleep(0.2)
    return agreed[-1]


def test_status_txid_reaches_what_the_replica_published_after_a_burst(tmp_path):
    for attempt in range(6):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        db = folder / "app.db"
        app = App(db)
        lt = Litetool(db, (folder / "replica").as_uri(), folder / "litetool.log")
        try:
            app.steps("open; create; insert 2000")
            lt.start()
            app.steps("commits 50")  # then the application goes quiet
            txid = agreed_txid(lt, attempt)
            # One more commit is one more txid: status hid no capture before it
            # (all 50 may be in the generation's base image, when litetool
            # opened the database after them).
            app.steps("commits 1")
            assert agreed_txid(lt, attempt) == txid + 1, attempt
            assert lt.stop() == 0, lt.tail()
        finally:
            if lt.proc is not None and lt.proc.poll() is None:
                lt.kill()
            app.quit()
