"""What every reliability test shares: the mode, and the figures it reports.

Two modes. **Short** (the default, what CI runs inside ``make test``): every
scenario, a few cycles or trials each, about five minutes in all. **Long**
(``make reliability``, by hand): ``LITETOOL_RELIABILITY=long``, hundreds of
cycles and thousands of trials, a soak.

Each test reports what it did and found through ``figures``: counters such
as cycles, faults injected, trials, transactions lost, silent corruptions.
They are written as JSON lines to ``$LITETOOL_RELIABILITY_FIGURES`` when set
(``make reliability`` sets it and ``tests/reliability/report.py`` turns the
file into docs/reliability.md), and printed at the end of the run otherwise.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

LONG = os.environ.get("LITETOOL_RELIABILITY", "short") == "long"
MODE = "long" if LONG else "short"


def scale(short: int, long: int) -> int:
    """``short`` in the short mode, ``long`` in the long one."""
    return long if LONG else short


class Figures:
    """Counters and values one test reports, under its name."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.values: dict[str, object] = {}
        self.started = time.monotonic()

    def add(self, name: str, amount: int | float = 1) -> None:
        self.values[name] = self.values.get(name, 0) + amount  # type: ignore[operator]

    def set(self, name: str, value: object) -> None:
        self.values[name] = value

    def record(self) -> dict:
        return {
            "test": self.test,
            "mode": MODE,
            "seconds": round(time.monotonic() - self.started, 1),
            **self.values,
        }


_REPORTED: list[dict] = []


def report(figures: Figures) -> None:
    """Keep a test's figures (see the module docstring)."""
    entry = figures.record()
    _REPORTED.append(entry)
    path = os.environ.get("LITETOOL_RELIABILITY_FIGURES")
    if path:
        with open(Path(path), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")


def reported() -> list[dict]:
    return list(_REPORTED)
