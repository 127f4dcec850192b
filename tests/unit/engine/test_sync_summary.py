"""A busy replica logs one summary line per 10 s (or 1,000 transactions), not one per sync."""

from litetool.engine.sync import segment_publish
from litetool.engine.sync.segment_publish import SyncSummary


def test_a_summary_gathers_syncs_until_it_is_due(monkeypatch):
    monkeypatch.setattr(segment_publish.time, "monotonic", lambda: 100.0)
    summary = SyncSummary()
    assert summary.seconds_left(100.0) == float("inf")  # nothing to say
    summary.add("g", 1, 4, 1, 1000)
    summary.add("g", 5, 9, 1, 2000)
    assert not summary.due(105.0)
    assert summary.seconds_left(105.0) == 5.0
    assert summary.due(110.0)
    fields = summary.take(110.0)
    assert fields == {
        "generation": "g",
        "txids": "1..9",
        "transactions": 9,
        "syncs": 2,
        "segments": 2,
        "bytes": 3000,
        "seconds": 10.0,
    }
    assert summary.take(111.0) == {} and not summary.due(200.0)


def test_a_thousand_transactions_make_a_summary_due_at_once(monkeypatch):
    monkeypatch.setattr(segment_publish.time, "monotonic", lambda: 0.0)
    summary = SyncSummary()
    summary.add("g", 1, 999, 3, 10)
    assert not summary.due(0.1)
    summary.add("g", 1000, 1000, 1, 10)
    assert summary.due(0.1)


def test_a_new_generation_starts_the_range_again(monkeypatch):
    monkeypatch.setattr(segment_publish.time, "monotonic", lambda: 0.0)
    summary = SyncSummary()
    summary.add("g1", 1, 50, 1, 10)
    summary.add("g2", 0, 7, 1, 10)
    assert summary.take(20.0)["txids"] == "0..7"
