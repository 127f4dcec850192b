"""How the CLI writes sizes, rates and lags."""

from litetool.cli.inspect import lag_cell


def test_lag_cell_says_what_is_known():
    # as `litetool status` writes the daemon's replica_lag
    assert lag_cell(3, 0.61, latest=True) == "3 tx / 0.6s"
    assert lag_cell(0, 0.0, latest=True) == "0 tx / 0.0s"
    # a latest generation whose database cannot be asked
    assert lag_cell(None, None, latest=True) == "unknown"
    # an older generation ended: nothing is behind it
    assert lag_cell(None, None, latest=False) == "-"
    assert lag_cell(3, 0.6, latest=False) == "-"
