"""How the TUI writes quantities: sizes, instants, ages and lags, and failures.

Pure functions over plain numbers, so every screen says "1.5 MiB" and
"04:38:38.306" the same way. Instants are UTC (commit times are captured in
UTC, and ``litetool restore --at`` reads UTC by default). A failure is one
line (``render_error``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from litetool.errors import LitetoolError

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(size: int) -> str:
    """``0 B``, ``512 B``, ``1.5 KiB``, ``12 MiB``: three significant digits at most."""
    value = float(size)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _moment(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1e6, UTC)


def format_time_us(time_us: int, *, milliseconds: bool = True) -> str:
    """``2026-11-25 04:38:38.306`` (UTC); ``-`` for 0 (never happened)."""
    if not time_us:
        return "-"
    moment = _moment(time_us)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if milliseconds:
        text += f".{moment.microsecond // 1000:03d}"
    return text


def format_clock_us(time_us: int) -> str:
    """``04:38:38.306`` (UTC time of day, for the event log); ``-`` for 0."""
    if not time_us:
        return "-"
    moment = _moment(time_us)
    return moment.strftime("%H:%M:%S") + f".{moment.microsecond // 1000:03d}"


def format_seconds(seconds: float) -> str:
    """A short duration: ``0s``, ``250ms``, ``1.5s``, ``42s``, ``3m05s``, ``2h10m``, ``3d04h``."""
    if seconds <= 0:
        return "0s"
    if seconds < 0.9995:
        return f"{round(seconds * 1000)}ms" if seconds >= 0.0005 else "0s"
    if seconds < 10:
        text = f"{seconds:.2f}".rstrip("0").rstrip(".")
        return f"{text or '0'}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_age(time_us: int, now_us: int) -> str:
    """How long ago *time_us* was, e.g. ``3s ago``; ``never`` for 0."""
    if not time_us:
        return "never"
    return f"{format_seconds((now_us - time_us) / 1e6)} ago"


def format_time_range(first_us: int, last_us: int) -> str:
    """``2026-11-25 04:38:38 → 04:39:02`` (the date once when both share it)."""
    first = format_time_us(first_us, milliseconds=False)
    last = format_time_us(last_us, milliseconds=False)
    if first[:10] == last[:10] and first != "-":
        last = last[11:]
    return f"{first} → {last}"


def short_generation(generation: str | None) -> str:
    return generation or "-"


def short_path(path: str, width: int = 40) -> str:
    """*path* cut from the left to at most *width* characters (``…/dir/app.db``)."""
    if len(path) <= width:
        return path
    return "…" + path[-(width - 1) :]


def render_error(exc: BaseException) -> str:
    """One line for any failure (LitetoolError renders itself with its hint)."""
    if isinstance(exc, LitetoolError):
        return exc.render()
    return f"error: {type(exc).__name__}: {exc}"
