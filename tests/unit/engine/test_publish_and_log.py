"""One thing told both ways: the board's event and the log line."""

from __future__ import annotations

from litetool.engine.runtime.status import StatusBoard, publish_and_log


def test_the_event_shows_the_replica_and_the_named_fields_the_log_every_field_in_order():
    board = StatusBoard(version="test")
    lines: list[tuple[str, str, list[tuple[str, object]]]] = []
    publish_and_log(
        board,
        lambda level, event, **fields: lines.append((level, event, list(fields.items()))),
        "debug",
        "checkpoint",
        "/db/app.db",
        "PASSIVE checkpoint of 3 frames",
        kind="checkpoint",
        shown=("mode", "frames"),
        mode="PASSIVE",
        frames=3,
        replica="s3",
        busy=False,
    )
    (event,) = board.events_since(0)
    assert (event.kind, event.database, event.message) == (
        "checkpoint",
        "/db/app.db",
        "PASSIVE checkpoint of 3 frames",
    )
    assert event.replica == "s3"
    assert event.data == {"mode": "PASSIVE", "frames": 3}
    assert lines == [
        (
            "debug",
            "checkpoint",
            [("mode", "PASSIVE"), ("frames", 3), ("replica", "s3"), ("busy", False)],
        )
    ]


def test_the_event_kind_is_the_log_level_unless_told():
    board = StatusBoard(version="test")
    lines = []
    publish_and_log(
        board,
        lambda level, event, **fields: lines.append(fields),
        "error",
        "validation",
        "/db",
        "validation of s3: page 3 differs",
        message="page 3 differs",  # a field may have the name of a parameter
    )
    (event,) = board.events_since(0)
    assert (event.kind, event.replica, event.data) == ("error", None, {})
    assert event.message == "validation of s3: page 3 differs"
    assert lines == [{"message": "page 3 differs"}]


def test_event_fields_go_to_the_event_only():
    board = StatusBoard(version="test")
    lines = []
    publish_and_log(
        board,
        lambda level, event, **fields: lines.append((level, event, fields)),
        "debug",
        "synced",
        "/db",
        "txids 1..4 to s3",
        kind="synced",
        shown=("bytes",),
        event_fields={"first_txid": 1, "last_txid": 4},
        replica="s3",
        txids="1..4",
        bytes=100,
    )
    (event,) = board.events_since(0)
    assert event.kind == "synced"
    assert event.data == {"bytes": 100, "first_txid": 1, "last_txid": 4}
    assert lines == [("debug", "synced", {"replica": "s3", "txids": "1..4", "bytes": 100})]
