"""The status board: frozen statuses replaced whole, counters added in one step."""

import json
import threading

import pytest

from litetool.engine.runtime.status import (
    DatabaseState,
    EventKind,
    ReplicaState,
    StatusBoard,
    publish_and_log,
)


def test_counters_are_added_to_what_the_board_holds():
    board = StatusBoard(version="test")
    board.update_database("/db", add={"capture_errors": 1}, state="error")
    status = board.update_database(
        "/db", add={"capture_errors": 2, "checkpoint_seconds_total": 0.5}
    )
    assert (status.capture_errors, status.checkpoint_seconds_total, status.state) == (
        3,
        0.5,
        "error",
    )
    assert board.databases() == (status,)


def test_a_replica_counts_from_its_first_update():
    board = StatusBoard(version="test")
    first = board.update_replica("/db", "s3", url="s3://b/app", add={"syncs": 1})
    second = board.update_replica("/db", "s3", state="ok", add={"syncs": 1, "sync_errors": 1})
    assert (first.url, first.syncs) == ("s3://b/app", 1)
    assert (second.url, second.syncs, second.sync_errors, second.state) == (
        "s3://b/app",
        2,
        1,
        "ok",
    )
    (database,) = board.databases()
    assert database.replicas == (second,)


def test_no_count_is_lost_when_threads_count_at_once():
    board = StatusBoard(version="test")
    threads, each = 8, 2000
    start = threading.Barrier(threads)

    def count() -> None:
        start.wait()
        for _ in range(each):
            board.update_database("/db", add={"task_failures": 1})
            board.update_replica("/db", "m", add={"sync_errors": 1})

    workers = [threading.Thread(target=count) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    (database,) = board.databases()
    assert database.task_failures == threads * each
    assert database.replicas[0].sync_errors == threads * each


def test_a_state_or_event_kind_outside_its_words_is_refused():
    board = StatusBoard(version="test")
    with pytest.raises(ValueError, match="'replicatin'"):
        board.update_database("/db", state="replicatin")
    with pytest.raises(ValueError, match="'okay'"):
        board.update_replica("/db", "m", state="okay")
    with pytest.raises(ValueError, match="'sync'"):
        board.publish("sync", "/db", "a word that is not a kind")
    assert board.events_since(0) == []


def test_typed_states_and_kinds_read_as_their_words_in_the_status_json():
    board = StatusBoard(version="test")
    board.update_database("/db", state=DatabaseState.REPLICATING)
    board.update_replica("/db", "m", state=ReplicaState.BACKOFF)
    logged = []
    publish_and_log(board, lambda *a, **f: logged.append(a), "warning", "w", "/db", "slow")
    (database,) = json.loads(json.dumps(board.as_dict()))["databases"]
    assert (database["state"], database["replicas"][0]["state"]) == ("replicating", "backoff")
    (event,) = board.events_since(0)
    assert event.kind is EventKind.WARNING and f"{event.kind:<8}|" == "warning |"
    assert logged == [("warning", "w")]
