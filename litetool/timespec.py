"""Parsing of durations, sizes and restore instants given by users.

One home for every human-written quantity: config durations ("500ms", "10s",
"24h", "7d", "1h30m"), byte sizes ("64MiB", "1GB") and restore instants
(RFC 3339 / ISO 8601 with or without seconds, with ``Z`` or an offset, or
relative forms ``-15m``, ``15m ago``, ``now``). Pure functions; errors are
``ValueError`` with a one-line message, wrapped by callers into
``ConfigError`` / ``UsageError`` with the key or flag that held the text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h|d|w)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 10**3,
    "kib": 2**10,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
    "tb": 10**12,
    "tib": 2**40,
}
_RELATIVE = re.compile(r"^(?:-\s*(?P<a>\S+)|(?P<b>\S+(?:\s+\S+)*?)\s+ago)$")
# 2021-01-01T00:00Z, 2021-01-01 00:00:00.5+02:00, 2021-01-01
_INSTANT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d{1,9})?)?)?"
    r"\s*(?P<tz>Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``500ms``, ``10s``, ``1h30m``, ``7d`` or ``0``."""
    raw = text.strip().lower().replace(" ", "")
    if raw in ("0", "0s"):
        return 0.0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(raw):
        raise ValueError(f"invalid duration {text!r} (use e.g. 500ms, 10s, 5m, 24h, 7d)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact text for a duration that parse_duration reads back."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        scaled = seconds / _DURATION_UNITS[unit]
        if abs(scaled - round(scaled)) < 1e-9 and round(scaled) >= 1:
            return f"{round(scaled)}{unit}"
    return f"{seconds}s"


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``512``, ``64MiB`` or ``1GB``."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: negative")
        return text
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid size {text!r} (use e.g. 512MiB, 1GiB)")
    unit = match.group(2).lower() if match.group(2) else None
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time (UTC, aware) from an absolute or relative user text.

    Absolute: RFC 3339 / ISO 8601, seconds optional, ``Z`` or ``+HH:MM``;
    a time without zone is UTC. Relative: ``-15m``, ``2h ago``, ``now``.
    """
    raw = text.strip()
    now = now or datetime.now(UTC)
    if raw.lower() == "now":
        return now
    relative = _RELATIVE.match(raw)
    if relative:
        amount = relative.group("a") or relative.group("b")
        try:
            seconds = parse_duration(amount)
        except ValueError:
            raise ValueError(
                f"invalid time {text!r} (use RFC 3339 like 2021-01-01T00:00Z, or -15m, 2h ago)"
            ) from None
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"invalid time {text!r}: out of range") from None
    match = _INSTANT.match(raw)
    if not match:
        raise ValueError(
            f"invalid time {text!r} (use RFC 3339 like 2021-01-01T00:00Z, or -15m, 2h ago)"
        )
    try:
        year, month, day = (int(x) for x in match.group("date").split("-"))
        hour = int(match.group("h") or 0)
        minute = int(match.group("m") or 0)
        second = int(match.group("s") or 0)
        frac = match.group("frac") or ""
        micro = int((frac[1:] + "000000")[:6]) if frac else 0
        tz = match.group("tz")
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid time {text!r}: {exc}") from None
    if tz and tz.upper() not in ("Z", "UTC"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise ValueError(f"invalid time {text!r}: offset out of range")
        try:
            moment -= sign * offset
        except OverflowError:
            raise ValueError(f"invalid time {text!r}: out of range") from None
    return moment


def format_instant_us(time_us: int) -> str:
    """RFC 3339 UTC text with microseconds for a Unix time in microseconds."""
    moment = datetime.fromtimestamp(time_us / 1e6, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_us(moment: datetime) -> int:
    """Unix time in microseconds of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
