"""Start-up time of `litetool --help` and `litetool version` next to bare Python.

Median wall time of fresh processes (default 25 each), in the same run:
`python -c pass` (the floor), `python -m litetool version`, `python -m
litetool --help`, and `python -m litetool replicate --help` (parses every
command). Ends with one JSON object of its figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def median_ms(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    py = sys.executable
    cases = {
        "python_pass": [py, "-c", "pass"],
        "litetool_version": [py, "-m", "litetool", "version"],
        "litetool_help": [py, "-m", "litetool", "--help"],
        "litetool_replicate_help": [py, "-m", "litetool", "replicate", "--help"],
    }
    figures = {name: round(median_ms(argv, args.repeats), 1) for name, argv in cases.items()}
    for name, ms in figures.items():
        extra = ms - figures["python_pass"]
        print(f"{name:26s} {ms:7.1f} ms  (+{extra:.1f} ms over bare Python)")
    print(json.dumps({"startup_ms": figures, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
