"""Zoom levels of the timeline's histogram: the whole generation, days, hours, minutes, seconds.

A level is what one histogram column covers: ``WHOLE`` (0) spreads the whole
generation over the columns; the others are one day, hour, minute or second
per column (``RestorePoints.histogram`` with ``unit_us``), so ``←``/``→`` step
to the previous or next day, hour, minute or second with commits. Only the
levels finer than the whole generation are offered (``ladder``): a day per
column for a generation of ten minutes would show one column. No textual here.
"""

from __future__ import annotations

WHOLE = 0
UNITS: tuple[tuple[str, int], ...] = (
    ("day", 86_400_000_000),
    ("hour", 3_600_000_000),
    ("minute", 60_000_000),
    ("second", 1_000_000),
)
_NAMES = dict((unit_us, name) for name, unit_us in UNITS)


def ladder(span_us: int, columns: int) -> list[int]:
    """The zoom levels for a generation spanning *span_us* on *columns* columns,
    coarsest first: ``WHOLE``, then every unit shorter than a column of it."""
    column_us = span_us / max(1, columns)
    return [WHOLE, *(unit_us for _, unit_us in UNITS if unit_us < column_us)]


def step(level: int, direction: int, span_us: int, columns: int) -> int:
    """The level one step finer (``direction=1``) or coarser (``-1``) than *level*
    (the same at either end; ``WHOLE`` for a level this generation does not offer)."""
    levels = ladder(span_us, columns)
    if level not in levels:
        return WHOLE
    position = min(max(levels.index(level) + direction, 0), len(levels) - 1)
    return levels[position]


def unit_name(level: int) -> str:
    """``minute`` for a level of a minute per column (``WHOLE``: ``""``)."""
    return _NAMES.get(level, "")


def describe(level: int) -> str:
    """What one column is: ``whole generation`` or ``1 column = 1 minute``."""
    return "whole generation" if level == WHOLE else f"1 column = 1 {unit_name(level)}"
