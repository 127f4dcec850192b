"""The engine in-process against real stores: idle cost, batching, outages, spool cap."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time

import pytest

from litetool.config.model import build_settings
from litetool.engine.replication import DatabaseReplication
from litetool.engine.runtime.status import StatusBoard
from litetool.storage import Replica


def make_db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, data BLOB)")
    return conn


def database_config(db, replicas, **extra):
    data = {"databases": [{"path": str(db), "replicas": replicas, **extra}]}
    return build_settings(data, {}, source=None).databases[0]


def one_memory_replica(tmp_path, tag, sync_interval):
    """A new database and the config of one memory replica ``m`` of it."""
    db = tmp_path / "app.db"
    app = make_db(db)
    url = f"memory://{tag}-{os.getpid()}-{time.time_ns()}"
    config = database_config(db, [{"url": url, "name": "m", "sync-interval": sync_interval}])
    return app, url, config


class Running:
    """Runs a DatabaseReplication on a private event loop in a thread."""

    def __init__(self, config):
        self.board = StatusBoard(version="test")
        self.events: list[tuple] = []
        self.replication = DatabaseReplication(
            config, self.board, log=lambda level, event, **f: self.events.append((event, f))
        )
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self):
        try:
            self.loop.run_until_complete(self.replication.run(self.stop))
        except BaseException as exc:  # surfaced by close()
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)
        if self.error:
            raise self.error

    def __exit__(self, *exc):
        self.close()

    def replica_status(self, name):
        for db in self.board.databases():
            for replica in db.replicas:
                if replica.name == name:
                    return replica
        return None

    def wait_published(self, name, txid, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.replica_status(name)
            if status and status.published_txid >= txid and status.state == "ok":
                return status
            time.sleep(0.02)
        raise AssertionError(f"replica {name} did not reach txid {txid}: {status}")


def requests_made(replica_status):
    return sum(replica_status.requests.values())


def test_idle_database_costs_no_requests_and_busy_one_segment_per_interval(tmp_path):
    app, url, config = one_memory_replica(tmp_path, "idle", "500ms")
    with Running(config) as running:
        running.wait_published("m", 0)
        for _i in range(20):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
        status = running.wait_published("m", 20)
        before = requests_made(status)
        time.sleep(2.0)  # idle: four sync intervals
        assert requests_made(running.replica_status("m")) == before
        # Busy for ~1.2 s at ~200 tx/s: a few syncs, not one per transaction.
        busy_started = time.time()
        deadline = busy_started + 1.2
        written = 20
        while time.time() < deadline:
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
            written += 1
            time.sleep(0.005)
        status = running.wait_published("m", written)
        busy_seconds = time.time() - busy_started
        puts = status.requests["put"]
    index = asyncio.run(Replica.open(url).index.load_generation(status.generation))
    segments = [s for s in index.segments if s.last_txid > 20]
    # One segment per 500 ms sync interval (plus the first and the last), however
    # slowly a loaded machine ran the writer.
    assert len(segments) <= busy_seconds / 0.5 + 2, [(s.first_txid, s.last_txid) for s in segments]
    assert index.last_txid == written
    assert puts < written // 2
    app.close()


def test_sync_interval_0s_uploads_at_once_but_coalesces_a_burst(tmp_path):
    app, url, config = one_memory_replica(tmp_path, "zero", "0s")
    with Running(config) as running:
        running.wait_published("m", 0)
        app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
        started = time.time()
        running.wait_published("m", 1)
        assert time.time() - started < 1.0  # a lone commit goes at once
        # A burst of commits as fast as the writer goes, for a second: hundreds to
        # thousands, many more than the 50 syncs a second can start, even on a
        # loaded machine (a paced writer's sleeps stretch under load: 126 commits
        # in a second were seen, too few to share segments four to one).
        busy_started = time.time()
        written = 1
        while time.time() < busy_started + 1.0:
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
            written += 1
        status = running.wait_published("m", written)
        busy_seconds = time.time() - busy_started
    index = asyncio.run(Replica.open(url).index.load_generation(status.generation))
    segments = [s for s in index.segments if s.last_txid > 1]
    # Syncs start at least 20 ms apart: the burst shares segments.
    assert len(segments) <= busy_seconds / 0.02 + 2, len(segments)
    assert len(segments) < written / 4, (len(segments), written)
    assert index.last_txid == written
    app.close()


def moto_replica(url, name, port):
    """An S3 replica on a moto server at ``port`` that fails fast when it is down."""
    return {
        "url": url,
        "name": name,
        "sync-interval": "0s",
        "endpoint": f"http://127.0.0.1:{port}",
        "region": "us-east-1",
        "access-key-id": "testing",
        "secret-access-key": "testing",
        "allow-http": True,
        "max-retries": 0,
        "timeout": "2s",
    }


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.servers
def test_outage_backs_off_then_catches_up(tmp_path):
    from moto.server import ThreadedMotoServer

    port = free_port()
    db = tmp_path / "app.db"
    app = make_db(db)
    replica = moto_replica("s3://outage-bucket/app", "s3", port)
    config = database_config(db, [replica])
    with Running(config) as running:
        while running.replica_status("s3") is None:
            time.sleep(0.02)  # the generation's base image is taken before any insert
        for _ in range(30):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(200),))
        deadline = time.time() + 10
        while time.time() < deadline and running.replica_status("s3").state != "backoff":
            time.sleep(0.05)
        status = running.replica_status("s3")
        assert status.state == "backoff"
        assert "unreachable" in status.last_error and "testing" not in status.last_error
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            import urllib.request

            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/outage-bucket", method="PUT")
            ).read()
            for _ in range(10):
                app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(200),))
            # Backoff is at most a few seconds this early; everything arrives.
            status = running.wait_published("s3", 40, timeout=40)
            assert status.sync_errors >= 1
        finally:
            running.close()
            server.stop()
    app.close()


@pytest.mark.servers
def test_spool_cap_detaches_the_lagging_replica_loudly(tmp_path):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{port}/capped", method="PUT")
    ).read()
    db = tmp_path / "app.db"
    app = make_db(db)
    good = f"memory://good-{time.time_ns()}"
    flaky = moto_replica("s3://capped/app", "flaky", port)
    config = database_config(
        db,
        [{"url": good, "name": "good", "sync-interval": "0s"}, flaky],
        **{"spool-max-bytes": "256KiB"},
    )
    with Running(config) as running:
        running.wait_published("flaky", 0)
        server.stop()  # the replica becomes unreachable with a position to keep
        for _ in range(200):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(3000),))
            time.sleep(0.002)
        running.wait_published("good", running.replication.txid)
        deadline = time.time() + 10
        while time.time() < deadline and not any(e == "spool full" for e, _ in running.events):
            time.sleep(0.05)
        assert any(event == "spool full" for event, _ in running.events)
        assert running.replica_status("flaky").state in ("detached", "backoff")
        assert running.replication.spool.size_bytes <= 2 * 256 * 1024
        spool_full = next(f for e, f in running.events if e == "spool full")
        assert spool_full["replica"] == "flaky"
    app.close()


def test_an_unexpected_capture_error_is_reported_and_capture_goes_on(tmp_path, monkeypatch):
    from litetool.engine.capture.capture import Capture

    app, _url, config = one_memory_replica(tmp_path, "unexpected", "0s")
    original = Capture.capture_once
    failures = []

    def flaky(self):
        if not failures and self.txid >= 3:
            failures.append(True)
            raise RuntimeError("injected")
        return original(self)

    monkeypatch.setattr(Capture, "capture_once", flaky)
    with Running(config) as running:
        running.wait_published("m", 0)
        for _ in range(6):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
            time.sleep(0.05)
        running.wait_published("m", 6)
        assert running.replication.txid == 6
    failed = [f for e, f in running.events if e == "capture failed"]
    assert failures and failed and "unexpected RuntimeError: injected" in failed[0]["error"]
    app.close()


def _slow_snapshots(monkeypatch, seconds):
    """Every snapshot upload takes *seconds* longer: commits land meanwhile."""
    original = Replica.put_snapshot

    async def slow(self, *args, **kwargs):
        await asyncio.sleep(seconds)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Replica, "put_snapshot", slow)


def _writer(db, stop, rows=None, size=2000):
    """Commit a row at a time from another connection until *stop* is set."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    count = 0
    while not stop.is_set() and (rows is None or count < rows):
        conn.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(size),))
        count += 1
        time.sleep(0.001)
    conn.close()


def _capped_database(tmp_path, tag, spool_max_bytes):
    """A database with one row and the config of one memory replica ``m`` at 0s."""
    db = tmp_path / "app.db"
    app = make_db(db)
    app.execute("INSERT INTO t(data) VALUES (?)", (b"before",))
    url = f"memory://{tag}-{time.time_ns()}"
    config = database_config(
        db,
        [{"url": url, "name": "m", "sync-interval": "0s"}],
        **{"spool-max-bytes": spool_max_bytes},
    )
    return db, app, url, config


def _restore_latest(url, path):
    """Restore the replica's latest point to *path*: (generations it has, rows restored)."""
    from litetool.restore import RestoreTarget, load_candidates, plan_fetching, restore_plan

    async def restore():
        replica = Replica.open(url)
        candidates = await load_candidates([replica])
        plan, candidates = await plan_fetching(candidates, RestoreTarget(), [replica])
        await restore_plan(plan, [replica], candidates, path)
        return len({index.generation for _, index in candidates})

    generations = asyncio.run(restore())
    restored = sqlite3.connect(path)
    rows = restored.execute("SELECT count(*) FROM t").fetchone()[0]
    restored.close()
    return generations, rows


def test_a_snapshot_taken_while_commits_stream_in_keeps_its_place(tmp_path, monkeypatch):
    # The replica's first snapshot uploads for a second while the
    # application writes: the spool must keep what follows the snapshot (it used
    # to trim it, and the replica then failed every sync forever).
    _slow_snapshots(monkeypatch, 1.0)
    # A spool of small files (a 16 MiB cap rotates every 2 MiB) that the
    # writer never fills: trims happen during the upload, the cap does not.
    db, app, url, config = _capped_database(tmp_path, "pinned", "16MiB")
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, stop, None, 4000))
    with Running(config) as running:
        writer.start()
        time.sleep(2.0)
        stop.set()
        writer.join()
        running.wait_published("m", running.replication.txid, timeout=30)
        assert not [e for e, _ in running.events if e in ("sync failed", "spool full")]
        assert not any(e == "replica lost its place in the spool" for e, _ in running.events)
        assert running.replication.snapshots.pinned() == []  # released once published
    rows = app.execute("SELECT count(*) FROM t").fetchone()[0]
    assert rows > 100
    assert _restore_latest(url, tmp_path / "restored.db") == (1, rows)
    app.close()


def test_a_snapshot_that_loses_its_place_to_the_cap_starts_over(tmp_path, monkeypatch):
    # Over the spool cap, a snapshot in flight gives way: its replica finds the
    # spool no longer continues it and starts a new generation from another
    # snapshot (loudly) instead of failing every sync; in the end it is current.
    _slow_snapshots(monkeypatch, 1.0)
    db, app, url, config = _capped_database(tmp_path, "capped-pin", "256KiB")
    writer = threading.Thread(target=_writer, args=(db, threading.Event(), 400, 3000))
    with Running(config) as running:
        writer.start()
        writer.join()
        running.wait_published("m", running.replication.txid, timeout=60)
        events = [e for e, _ in running.events]
        assert "spool full" in events
        assert "replica lost its place in the spool" in events
        assert "sync failed" not in events  # never retried in vain
    generations, rows = _restore_latest(url, tmp_path / "restored.db")
    assert generations >= 2 and rows == 401
    app.close()


def test_a_backlog_of_several_records_ships_without_new_commits(tmp_path, monkeypatch):
    # A sync names at most MAX_SEGMENTS_PER_RECORD segments; what is left must go
    # at once, not wait for a commit that may never come (it used to wait until
    # the next upkeep, an hour later).
    from litetool.engine.sync import segment_build, segment_publish

    monkeypatch.setattr(segment_publish, "MAX_SEGMENTS_PER_RECORD", 1)
    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", 16 << 10)
    app, _url, config = one_memory_replica(tmp_path, "backlog", "1s")
    with Running(config) as running:
        running.wait_published("m", 0)
        for _ in range(200):  # spread over many captures: many small spool records
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(4000),))
            time.sleep(0.005)
        status = running.wait_published("m", 200, timeout=30)
        assert status.syncs >= 10  # one segment per record: the backlog took many
    app.close()


def test_full_segments_upload_while_the_interval_runs_and_one_record_names_them(
    tmp_path, monkeypatch
):
    # At full speed the work of a sync is spread over its interval: each full
    # segment is uploaded as soon as the spool holds it, and the next sync
    # publishes one record naming them all (the restore points appear at the
    # interval, as before).
    from litetool.engine.sync import segment_build

    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", 64 << 10)
    app, url, config = one_memory_replica(tmp_path, "staged", "4s")
    with Running(config) as running:
        running.wait_published("m", 0)
        before = running.replica_status("m")
        app.execute("INSERT INTO t(data) VALUES (?)", (b"first",))
        first = running.wait_published("m", 1, timeout=10)  # opens a 4 s interval
        for _ in range(60):  # about 700 KB of WAL: several full segments
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(8000),))
            # Apart, so that captures take them in small batches (a spool
            # record, however large, goes into one segment).
            time.sleep(0.015)
        deadline = time.time() + 2.0
        staged_puts = 0
        while time.time() < deadline:
            status = running.replica_status("m")
            if status.published_txid == 1:
                staged_puts = status.requests["put"] - first.requests["put"]
            if staged_puts >= 4:
                break
            time.sleep(0.05)
        # Uploaded, not yet published: the record waits for the interval.
        assert staged_puts >= 4
        assert running.replica_status("m").published_txid == 1
        status = running.wait_published("m", 61, timeout=10)
        assert status.syncs == first.syncs + 1  # one record for all of them
        assert before.syncs <= first.syncs
    index = asyncio.run(Replica.open(url).index.load_generation(status.generation))
    later = [s for s in index.segments if s.first_txid > 1]
    assert len(later) >= staged_puts
    assert [s.first_txid for s in later] == [1 + 1] + [s.last_txid + 1 for s in later[:-1]]
    assert index.last_txid == 61
    assert _restore_latest(url, tmp_path / "restored.db") == (1, 61)
    app.close()


def test_a_replica_the_spool_does_not_continue_starts_a_generation_of_its_own(
    tmp_path, monkeypatch
):
    # After a power cut, the spool may have lost a tail that the replica already
    # has (and the database may have lost it too): the next transactions would
    # reuse those txids for other changes. Such a replica, like one whose next
    # transactions the spool no longer holds, starts a new generation instead of
    # resuming (or trying to rewrite record 0 of the old one).
    from types import SimpleNamespace

    from litetool.engine.sync.generation_start import resume_generation
    from litetool.engine.sync.replica_sync import ReplicaSync

    app, url, config = one_memory_replica(tmp_path, "ahead", "0s")
    with Running(config) as running:
        running.wait_published("m", 0)
        for _ in range(10):
            app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
        status = running.wait_published("m", 10)
        writer_id = running.replication.writer_id
    app.close()
    generation = status.generation

    def sync_for(txid, spool_first):
        engine = SimpleNamespace(
            generation=generation,
            generation_reason="",
            txid=txid,
            writer_id=writer_id,
            spool=SimpleNamespace(first_txid=spool_first),
        )
        events = []
        sync = ReplicaSync(
            name="m",
            replica=Replica.open(url),
            engine=engine,
            board=StatusBoard(version="test"),
            db_path=str(tmp_path / "app.db"),
            sync_interval=1.0,
            snapshot_interval=0.0,
            retention=3600.0,
            gc_grace=60.0,
            log=lambda level, event, **f: events.append((event, f)),
        )
        return sync, events

    def resume(txid, spool_first):
        sync, _ = sync_for(txid, spool_first)
        return asyncio.run(resume_generation(sync.writer, sync.engine, generation))

    position, why = resume(10, None)
    assert position is not None and position.txid == 10 and why == ""
    position, why = resume(12, 11)  # the spool holds what follows txid 10
    assert position is not None and position.txid == 10 and why == ""
    position, why = resume(7, None)
    assert position is None and "has txid 10" in why and "up to 7" in why
    position, why = resume(30, 20)
    assert position is None and "no longer holds" in why

    # _start gives such a replica a generation of its own, with the reason
    # its record 0 will give.
    sync, events = sync_for(7, None)
    published = []

    async def no_snapshot():
        published.append(sync.writer.reason)

    monkeypatch.setattr(sync, "_publish_snapshot", no_snapshot)
    asyncio.run(sync._start())
    assert sync.position.generation != generation
    assert sync.position.engine_generation == generation
    assert published and "has txid 10" in published[0]
    assert [e for e, _ in events] == ["replica cannot continue its generation"]


def test_the_spool_cap_counts_only_what_a_replica_still_needs(tmp_path):
    # A replica that keeps up is never detached for data it already published:
    # the cap check trims to what the replicas hold before it compares (it used
    # to compare first, and a burst between two trims detached a current replica).
    db, app, url, config = _capped_database(tmp_path, "cap-trim", "1MiB")
    with Running(config) as running:
        running.wait_published("m", 0)
        writer = sqlite3.connect(db, isolation_level=None, timeout=10)
        for burst in range(40):  # 40 x 280 KB, several within one 250 ms trim
            for _ in range(15):
                writer.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(15000),))
            # Each insert is a transaction (the engine's own txid may not have
            # seen this burst yet, and then bursts would pile up past the cap).
            running.wait_published("m", 15 * (burst + 1), timeout=30)
        writer.close()
        full = [f for e, f in running.events if e == "spool full"]
        assert not full, full
        assert running.replica_status("m").state == "ok"
    assert _restore_latest(url, tmp_path / "restored.db") == (1, 601)
    app.close()


def _gated_uploads(monkeypatch, gate: threading.Event):
    """Objects (segments) wait for *gate* before they upload: a replica that is
    reachable (nothing fails) and, while the gate is shut, slower than any writer."""
    original = Replica.put_object

    async def gated(self, kind, payload):
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return await original(self, kind, payload)

    monkeypatch.setattr(Replica, "put_object", gated)


_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
while not os.path.exists(sys.argv[2]):
    conn.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(4000),))
"""


def _rows_per_second(db, seconds):
    reader = sqlite3.connect(db)
    first = reader.execute("SELECT max(id) FROM t").fetchone()[0]
    time.sleep(seconds)
    last = reader.execute("SELECT max(id) FROM t").fetchone()[0]
    reader.close()
    return (last - first) / seconds


def test_a_reachable_replica_that_lags_brakes_the_writer_before_the_spool_cap(
    tmp_path, monkeypatch
):
    # A replica that is reachable but slower than the application is not
    # detached at the cap (and started over from a snapshot): near the cap
    # the application's writers are braked, until the replica catches up.
    # (An unreachable one never brakes them: see the spool cap test above.)
    import subprocess
    import sys

    from litetool.engine.sync import replica_progress, segment_publish

    gate = threading.Event()
    _gated_uploads(monkeypatch, gate)
    # Stuck for the whole test, yet reachable: no failure, and the window for
    # its progress longer than the test.
    monkeypatch.setattr(replica_progress, "PROGRESS_WINDOW_SECONDS", 600.0)
    db, app, url, config = _capped_database(tmp_path, "brake", "128MiB")
    done = tmp_path / "writer.done"
    gate.set()  # for the snapshot
    with Running(config) as running:
        running.wait_published("m", 0)
        gate.clear()
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(done)])
        try:
            time.sleep(0.3)
            free = _rows_per_second(db, 0.5)
            deadline = time.time() + 30
            while time.time() < deadline and not running.replication.backpressure:
                time.sleep(0.01)
            assert running.replication.backpressure
            braked = _rows_per_second(db, 0.5)
        finally:
            done.touch()
            writer.wait(30)
        assert braked < free * 0.6, (free, braked)
        status = running.board.databases()[0]
        assert status.backpressure and status.braked_seconds_total > 0
        gate.set()
        running.wait_published("m", running.replication.txid, timeout=60)
        deadline = time.time() + 5
        while time.time() < deadline and running.board.databases()[0].backpressure:
            time.sleep(0.05)
        assert not running.board.databases()[0].backpressure
        rows = sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()[0]
    events = [e for e, _ in running.events]
    assert "backpressure" in events and "backpressure off" in events
    assert "spool full" not in events
    # Under pressure the backlog went in several smaller records (the spool is
    # trimmed to published records), not in one of up to 64 segments.
    backlog = [f["segments"] for e, f in running.events if e == "synced"][-3:]
    assert max(backlog) <= segment_publish.SEGMENTS_PER_RECORD_UNDER_PRESSURE < sum(backlog)
    assert _restore_latest(url, tmp_path / "restored.db") == (1, rows)
    app.close()


def test_records_published_across_restarts_are_compacted(tmp_path, monkeypatch):
    """Before: the count of records since the last compaction started at 0 in each
    process, so a litetool restarted more often than every COMPACT_EVERY_RECORDS
    records never compacted (and each resume read every record since)."""
    from litetool.engine.sync import upkeep

    monkeypatch.setattr(upkeep, "COMPACT_EVERY_RECORDS", 6)
    app, url, config = one_memory_replica(tmp_path, "compact", "0s")
    written = 0
    for _life in range(3):  # 4 records a life: never 6 within one
        with Running(config) as running:
            running.wait_published("m", written)
            for _ in range(4):
                app.execute("INSERT INTO t(data) VALUES (?)", (os.urandom(100),))
                written += 1
                running.wait_published("m", written)
    replica = Replica.open(url)
    generation = running.replica_status("m").generation
    keys = asyncio.run(replica.index.list_record_keys(generation))[generation]
    assert any(ref.compacted for ref in keys.refs), [ref.key for ref in keys.refs]
    index = asyncio.run(replica.index.load_generation(generation))
    assert index.last_txid == written
    app.close()
