"""Durations, sizes and instants: round trips and rejection of garbage."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetool.timespec import (
    format_duration,
    format_instant_us,
    parse_duration,
    parse_instant,
    parse_size,
    to_us,
)

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_units(amount, unit):
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{amount}{unit}") == pytest.approx(amount * scale)


@given(st.integers(min_value=0, max_value=10**6))
def test_format_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@given(instants)
def test_instant_round_trips_through_rfc3339(moment):
    assert parse_instant(format_instant_us(to_us(moment))) == moment


@given(instants, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_offsets_are_applied(moment, offset_minutes):
    offset = timedelta(minutes=offset_minutes)
    local = (moment + offset).replace(tzinfo=None)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{hours:02d}:{minutes:02d}"
    assert parse_instant(text) == moment


@given(st.integers(min_value=1, max_value=10**5), st.sampled_from(["s", "m", "h", "d"]))
def test_relative_instants(amount, unit):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expected = now - timedelta(seconds=parse_duration(f"{amount}{unit}"))
    assert parse_instant(f"-{amount}{unit}", now=now) == expected
    assert parse_instant(f"{amount}{unit} ago", now=now) == expected


@given(st.text(max_size=30))
def test_garbage_is_a_value_error_or_a_valid_parse(text):
    for parse in (parse_duration, parse_size, parse_instant):
        try:
            parse(text)
        except ValueError as exc:
            assert "\n" not in str(exc)


def test_examples():
    assert parse_instant("2021-01-01T00:00Z") == datetime(2021, 1, 1, tzinfo=UTC)
    assert parse_instant("2021-01-01T01:00+01:00") == datetime(2021, 1, 1, tzinfo=UTC)
    assert parse_instant("2021-01-01") == datetime(2021, 1, 1, tzinfo=UTC)
    assert parse_duration("1h30m") == 5400
    assert parse_size("64MiB") == 64 << 20
    for bad in ("2021-13-01T00:00Z", "yesterday", "10 parsecs ago", "2021-01-01T25:00Z",
                "99999999d ago", "0001-01-01T00:00+01:00"):
        with pytest.raises(ValueError):
            parse_instant(bad)
    for bad in ("", "10", "1x", "s", "-5s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
