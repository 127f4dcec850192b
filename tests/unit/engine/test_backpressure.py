"""When the engine brakes the application for a replica that lags."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.capture.brake import (
    BACKPRESSURE_OFF_SHARE,
    BACKPRESSURE_ON_SHARE,
    backpressure_wanted,
)


def test_backpressure_starts_near_the_cap_and_stops_well_under_it():
    assert 0.5 <= BACKPRESSURE_OFF_SHARE < BACKPRESSURE_ON_SHARE < 1
    below = (BACKPRESSURE_OFF_SHARE + BACKPRESSURE_ON_SHARE) / 2
    assert not backpressure_wanted(False, below, True)
    assert backpressure_wanted(False, BACKPRESSURE_ON_SHARE, True)
    assert backpressure_wanted(True, below, True)  # hysteresis: still braking
    assert backpressure_wanted(True, BACKPRESSURE_OFF_SHARE, True)
    assert not backpressure_wanted(True, BACKPRESSURE_OFF_SHARE - 0.01, True)


@given(braking=st.booleans(), share=st.floats(min_value=0, max_value=10))
def test_an_unreachable_laggard_never_brakes_the_application(braking, share):
    assert not backpressure_wanted(braking, share, False)


@given(share=st.floats(min_value=0, max_value=10))
def test_braking_goes_on_no_earlier_than_it_stays_on(share):
    # Whatever starts braking keeps it going: no flapping at one share.
    if backpressure_wanted(False, share, True):
        assert backpressure_wanted(True, share, True)
