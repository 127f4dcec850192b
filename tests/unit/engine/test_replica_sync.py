"""One replica's sync, step by step, from the real spool of a real database to a
real file replica: what one sync publishes, its immutable progress, an idle
sync that asks nothing of the store, detaching, and the final sync; the
replica restores to exactly the rows the application wrote."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
from engine_builders import Log, insert
from sync_builders import open_replication, replica_sync, restore_with_cli, rows_of

from litetool.storage import Replica


@pytest.fixture
def replicated(tmp_path):
    """The replication of ``app.db`` (3 rows), the application, the replica's URL
    and its sync, started: the replica holds the generation's snapshot."""
    log = Log()
    replication, app, url = open_replication(tmp_path, log, rows=3)
    sync = replica_sync(replication, url, log)
    asyncio.run(sync._start())  # the loop's first step: find or create the generation
    yield replication, app, url, sync
    replication.side.close()
    app.close()


def requests(sync) -> dict[str, int]:
    """Requests the replica's store was asked, by kind."""
    return {kind: counts.requests for kind, counts in sync.replica.stats.snapshot().items()}


def index_of(url: str, generation: str):
    return asyncio.run(Replica.open(url).index.load_generation(generation))


def test_the_start_publishes_the_snapshot_the_application_wrote(replicated, tmp_path):
    replication, app, url, sync = replicated
    progress = sync.progress
    assert progress.generation is not None
    assert progress.engine_generation == replication.generation
    assert progress.txid == replication.txid == 0 and not progress.detached
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_one_sync_publishes_one_segment_and_one_record_and_moves_progress(replicated, tmp_path):
    replication, app, url, sync = replicated
    before = sync.progress
    insert(app, 4, 5, 6, 7)
    replication.side.capture.capture_once()
    asked = requests(sync)
    assert asyncio.run(sync.sync_once()) is True
    after = sync.progress
    # A new progress value; the one read before it is as it was.
    assert after is not before and before.txid == 0
    assert (after.generation, after.txid) == (before.generation, replication.txid)
    assert replication.txid == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.txid = 0  # type: ignore[misc]
    # One segment and one index record, nothing else written.
    puts = requests(sync).get("put", 0) - asked.get("put", 0)
    assert puts == 2
    index = index_of(url, after.generation)
    assert index.last_txid == 4
    segments = [(s.first_txid, s.last_txid) for s in index.segments]
    assert segments[-1] == (1, 4)
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_an_idle_sync_asks_the_store_nothing_and_keeps_its_progress(replicated):
    replication, app, _url, sync = replicated
    insert(app, 4)
    replication.side.capture.capture_once()
    assert asyncio.run(sync.sync_once()) is True
    progress = sync.progress
    asked = requests(sync)
    assert replication.side.capture.capture_once() is None  # nothing new
    for _ in range(3):
        assert asyncio.run(sync.sync_once()) is False
    assert requests(sync) == asked
    # Nothing to publish counts as moving (the replica is current), nothing else changes.
    now = sync.progress
    assert now.active_at >= progress.active_at
    assert dataclasses.replace(now, active_at=progress.active_at) == progress


def test_a_backlog_of_several_captures_goes_in_one_sync(replicated, tmp_path):
    replication, app, url, sync = replicated
    for value in range(4, 24):
        insert(app, value)
        replication.side.capture.capture_once()  # twenty captures, twenty spool records
    located = replication.spool.locate_after(0, max_bytes=1 << 40)
    located.close()
    assert len(located.records) == 20
    assert asyncio.run(sync.sync_once()) is True
    assert sync.progress.txid == 20
    index = index_of(url, sync.progress.generation)
    assert [(s.first_txid, s.last_txid) for s in index.segments][-1] == (1, 20)
    assert asyncio.run(sync.sync_once()) is False
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_detach_from_another_thread_marks_the_progress_and_the_board_at_once(replicated):
    replication, app, _url, sync = replicated
    insert(app, 4)
    replication.side.capture.capture_once()
    asyncio.run(sync.sync_once())
    before = sync.progress
    thread = threading.Thread(target=sync.detach)  # the capture thread, at the spool cap
    thread.start()
    thread.join()
    after = sync.progress
    assert after.detached and not before.detached
    assert dataclasses.replace(after, detached=False) == before  # nothing else changed
    (database,) = replication.board.databases()
    (replica,) = database.replicas
    assert (replica.name, replica.state) == ("m", "detached")


def test_the_final_sync_of_a_detached_replica_starts_a_generation_that_ends_current(
    replicated, tmp_path
):
    replication, app, url, sync = replicated
    insert(app, 4)
    replication.side.capture.capture_once()
    asyncio.run(sync.sync_once())
    first = sync.progress.generation
    sync.detach()
    insert(app, 5, 6)
    replication.side.capture.capture_once()

    async def stop_at_once():
        stop = asyncio.Event()
        stop.set()
        await sync.run(stop)  # no loop round: the final sync only

    asyncio.run(stop_at_once())
    progress = sync.progress
    assert not progress.detached
    assert progress.generation is not None and progress.generation != first
    assert progress.engine_generation == replication.generation  # the engine's is unchanged
    assert progress.txid == replication.txid == 3
    # The detached replica's old generation stays as it was.
    assert index_of(url, first).last_txid == 1
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    (database,) = replication.board.databases()
    (replica,) = database.replicas
    assert replica.state == "stopped"


def test_the_final_sync_publishes_what_was_captured_last(replicated, tmp_path):
    replication, app, url, sync = replicated
    insert(app, 4, 5)
    replication.side.capture.capture_once()

    async def stop_at_once():
        stop = asyncio.Event()
        stop.set()
        await sync.run(stop)

    asyncio.run(stop_at_once())
    assert sync.progress.txid == 2
    assert index_of(url, sync.progress.generation).last_txid == 2
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)


def test_notify_from_another_thread_wakes_the_loop(replicated):
    _replication, _app, _url, sync = replicated

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        thread = threading.Thread(target=lambda: (sync.notify(loop), sync.notify(loop)))
        thread.start()
        await asyncio.to_thread(thread.join)
        await asyncio.wait_for(sync.wake.wait(), timeout=10)
        return sync.wake.is_set()

    assert asyncio.run(scenario())


@pytest.mark.parametrize(
    "flipped",
    [-4096 - 24 + 7, -1000],
    ids=["the last frame's database size", "a byte of the last frame's page"],
)
def test_a_spool_file_damaged_after_it_was_written_starts_the_replica_over_from_a_snapshot(
    replicated, tmp_path, flipped
):
    """The spool cannot give a replica its next transactions (a byte flipped on
    disk after the append): it says so and starts a new generation from the
    database, which holds them, instead of failing every sync until a restart
    (a frame header) or publishing the changed page (a page)."""
    replication, app, url, sync = replicated
    insert(app, 4)
    replication.side.capture.capture_once()
    asyncio.run(sync.sync_once())
    first = sync.progress.generation
    insert(app, 5, 6)
    replication.side.capture.capture_once()
    replication.side.spool.sync()
    (latest,) = sorted((replication.side.spool.directory / "log").glob("*.spool"))[-1:]
    damaged = bytearray(latest.read_bytes())
    damaged[flipped] ^= 0x01
    latest.write_bytes(bytes(damaged))

    async def stop_at_once():
        stop = asyncio.Event()
        stop.set()
        await sync.run(stop)

    asyncio.run(stop_at_once())
    progress = sync.progress
    assert progress.generation not in (None, first) and not progress.detached
    assert progress.txid == replication.txid == 3
    assert index_of(url, first).last_txid == 1  # what it had published stays
    assert restore_with_cli(url, tmp_path / "restored.db") == rows_of(app)
    lost = [
        (level, fields["error"])
        for level, event, fields in sync.log.lines
        if event == "replica lost its place in the spool"
    ]
    assert len(lost) == 1 and lost[0][0] == "error" and "is damaged" in lost[0][1]
