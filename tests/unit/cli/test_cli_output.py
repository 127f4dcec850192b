"""How the CLI writes sizes, rates and lags."""

import pytest

from litetool.cli.inspect import lag_cell
from litetool.cli.output import human_bytes, human_rate


@pytest.mark.parametrize(
    "count, expected",
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1023.6, "1.0 KiB"),  # not "1024 B"
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # not "1024.0 KiB"
        (5 << 20, "5.0 MiB"),
        (3 << 30, "3.0 GiB"),
        (2 << 40, "2.0 TiB"),
    ],
)
def test_human_bytes(count, expected):
    assert human_bytes(count) == expected
    assert len(human_bytes(count)) <= 10


@pytest.mark.parametrize(
    "rate, expected",
    [
        (0.0, "0 B/s"),
        (0.4, "0 B/s"),
        (300, "300 B/s"),  # was "0.0 MiB/s"
        (20 * 1024, "20.0 KiB/s"),  # was "0.0 MiB/s"
        (1.5 * 2**20, "1.5 MiB/s"),
        (-5, "0 B/s"),
    ],
)
def test_human_rate_uses_a_unit_that_suits_the_rate(rate, expected):
    assert human_rate(rate) == expected


def test_lag_cell_says_what_is_known():
    # as `litetool status` writes the daemon's replica_lag
    assert lag_cell(3, 0.61, latest=True) == "3 tx / 0.6s"
    assert lag_cell(0, 0.0, latest=True) == "0 tx / 0.0s"
    # a latest generation whose database cannot be asked
    assert lag_cell(None, None, latest=True) == "unknown"
    # an older generation ended: nothing is behind it
    assert lag_cell(None, None, latest=False) == "-"
    assert lag_cell(3, 0.6, latest=False) == "-"
