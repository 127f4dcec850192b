"""Rendering command results: aligned human tables, or JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

# Where commands look for the config file, in order (litetool.config).
CONFIG_HELP = "config file (default: $LITETOOL_CONFIG, ./litetool.toml, /etc/litetool.toml)"


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns separated by two spaces; header in capitals."""
    text_rows = [[("" if v is None else str(v)) for v in row] for row in rows]
    header = [c.upper() for c in columns]
    widths = [len(h) for h in header]
    for row in text_rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    out = sys.stdout
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for row in text_rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def human_bytes(count: float) -> str:
    """``0 B``, ``512 B``, ``1.5 KiB``, ``12.0 MiB``: at most ``1023.9 GiB`` (10 characters)
    below a TiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        # 1023.96 KiB would round to "1024.0 KiB": it is the next unit's 1.0
        if value < (1023.5 if unit == "B" else 1023.95) or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_rate(bytes_per_second: float) -> str:
    """A transfer rate in the unit that suits it: ``0 B/s``, ``512 B/s``, ``20.0 KiB/s``,
    ``1.5 MiB/s`` (never ``0 MiB/s`` for a small one)."""
    return f"{human_bytes(max(0.0, bytes_per_second))}/s"
