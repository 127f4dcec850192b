"""SegmentBuilder: a replica's next segment from a real spool."""

import pytest
from spool_builders import PAGE, T0, make_spool

from litetool.engine.sync import segment_build
from litetool.engine.sync.segment_build import SegmentBuilder, SpoolGap, TransactionTooLarge
from litetool.storage import decode_segment


@pytest.fixture
def spool(tmp_path):
    spool = make_spool(tmp_path / "spool", 10, per_record=2)
    yield spool
    spool.close()


def test_the_next_segment_starts_after_the_txid_and_ends_at_a_record(spool):
    built = SegmentBuilder(spool, "m").build_after(4, None)
    assert built is not None and not built.backlog
    segment = decode_segment(bytes(built.segment.payload))
    assert (segment.first_txid, segment.last_txid, segment.page_size) == (5, 10, PAGE)
    assert list(built.segment.times_us) == [T0 + txid for txid in range(5, 11)]
    assert built.last_time_us == T0 + 10
    assert SegmentBuilder(spool, "m").build_after(10, None) is None


def test_through_txid_stops_at_the_last_whole_record_before_it(spool):
    built = SegmentBuilder(spool, "m").build_after(0, 5)
    assert built is not None
    assert (built.segment.first_txid, built.segment.last_txid) == (1, 4)


def test_a_segment_target_smaller_than_the_backlog_leaves_a_backlog(spool, monkeypatch):
    monkeypatch.setattr(segment_build, "SEGMENT_TARGET_BYTES", 2 * PAGE)
    builder = SegmentBuilder(spool, "m")
    built = builder.build_after(0, None)
    assert built is not None and built.backlog
    assert built.segment.last_txid < 10
    assert builder.full_segment_after(built.segment.last_txid)
    assert not builder.full_segment_after(10)


def test_a_txid_the_spool_no_longer_holds_is_a_gap(spool):
    spool.trim(4)
    with pytest.raises(SpoolGap, match="no longer holds txid 2 for replica m"):
        SegmentBuilder(spool, "m").build_after(1, None)


def test_a_record_larger_than_a_segment_may_be_is_too_large(spool, monkeypatch):
    monkeypatch.setattr(segment_build, "MAX_SEGMENT_PAYLOAD_BYTES", PAGE)
    with pytest.raises(TransactionTooLarge, match=r"txids 1\.\.2"):
        SegmentBuilder(spool, "m").build_after(0, None)
