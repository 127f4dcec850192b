"""How quantities and failures are written on screen."""

from litetool.errors import TargetUnreachable
from litetool.tui.display import (
    format_age,
    format_bytes,
    format_seconds,
    format_time_range,
    format_time_us,
    render_error,
    short_path,
)

T = 1_764_040_000_123_456  # 2025-11-25 03:06:40.123456 UTC


def test_bytes():
    assert [format_bytes(n) for n in (0, 999, 1536, 150 * 1024, 5 * 2**30)] == [
        "0 B",
        "999 B",
        "1.5 KiB",
        "150 KiB",
        "5.0 GiB",
    ]


def test_durations_and_ages():
    assert [format_seconds(s) for s in (0, 0.0001, 0.033, 1.5, 42, 185, 7800, 300000)] == [
        "0s",
        "0s",
        "33ms",
        "1.5s",
        "42s",
        "3m05s",
        "2h10m",
        "3d11h",
    ]
    assert format_age(0, T) == "never"
    assert format_age(T - 3_000_000, T) == "3s ago"


def test_instants_are_utc():
    assert format_time_us(T) == "2025-11-25 03:06:40.123"
    assert format_time_us(T, milliseconds=False) == "2025-11-25 03:06:40"
    assert format_time_us(0) == "-"
    assert format_time_range(T, T + 60_000_000) == "2025-11-25 03:06:40 → 03:07:40"
    assert format_time_range(T, T + 86_400_000_000) == "2025-11-25 03:06:40 → 2025-11-26 03:06:40"


def test_short_path_keeps_the_end():
    assert short_path("/a/b/app.db", 40) == "/a/b/app.db"
    assert short_path("/very/long/directory/name/app.db", 12) == "…name/app.db"


def test_a_failure_is_one_line():
    error = TargetUnreachable("txid 9 is not a restore point", hint="use --txid 8")
    assert render_error(error) == "error: txid 9 is not a restore point (hint: use --txid 8)"
    assert render_error(OSError(28, "No space left")) == (
        "error: OSError: [Errno 28] No space left"
    )
