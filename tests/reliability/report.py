"""Turn the figures of a reliability run into docs/reliability.md.

    .venv/bin/python tests/reliability/report.py [--started EPOCH] FIGURES.jsonl COMMAND...

``make reliability`` runs the long mode with ``LITETOOL_RELIABILITY_FIGURES``
set and then this, so the document always says which command produced its
figures, on which commit, when, and how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "reliability.md"

INTRO = """# Reliability: what the suite tried, and what it found

`tests/reliability` tries to break litetool the way production does: kill -9
at random moments, applications that checkpoint, VACUUM and replace files
while litetool runs or is away, object stores that go down, slow down, fail
or hang, disks that fill, replicas that rot or are crafted to attack, two
replicators on one database. CI runs its short mode inside `make test` on
every change; `make reliability` runs the long mode and rewrites this page
with its figures. Every figure below comes from the run named under it.
"""


def main() -> int:
    args = sys.argv[1:]
    started = None
    if args[:1] == ["--started"]:  # when the run began (seconds since the epoch)
        started, args = float(args[1]), args[2:]
    figures_path = Path(args[0])
    command = " ".join(args[1:]) or "make reliability"
    entries = [json.loads(line) for line in figures_path.read_text().splitlines() if line]
    commit = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %ad", "--date=short"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    lines = [INTRO]
    lines.append(f"## Long run, commit {commit}\n")
    lines.append(
        f"Command: `{command}`, finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
    )
    total = sum(float(e.get("seconds", 0)) for e in entries)
    wall = f", {(time.time() - started) / 60:.0f} minutes from start to end" if started else ""
    lines.append(f"{len(entries)} scenarios, {total / 60:.1f} minutes of tests{wall}.\n")
    keys = ["lost_transactions", "silent_corruptions"]
    lost = sum(int(e.get(k, 0)) for e in entries for k in keys)
    lines.append(f"Transactions lost and silent corruptions over the whole run: **{lost}**.\n")
    lines.extend(summary(entries))
    for entry in entries:
        lines.append(f"### {entry['test']}\n")
        lines.append("| figure | value |")
        lines.append("|---|---|")
        for key, value in entry.items():
            if key in ("test",):
                continue
            lines.append(f"| {key} | {value} |")
        lines.append("")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(entries)} scenarios)")
    return 0


def _sum(entries: list[dict], match) -> int:
    return sum(
        int(value)
        for entry in entries
        for key, value in entry.items()
        if match(key) and isinstance(value, int | float)
    )


def summary(entries: list[dict]) -> list[str]:
    """The run in one table: what was tried, and what was lost."""
    rows = [
        ("kill -9 cycles of the replicator", _sum(entries, lambda k: k == "cycles")),
        ("writer processes killed mid-transaction", _sum(entries, lambda k: k == "writer_kills")),
        ("rows written by the crash writer", _sum(entries, lambda k: k == "rows_written")),
        ("restores checked during crash cycles", _sum(entries, lambda k: k == "restores_checked")),
        (
            "soak faults (kills, application, store)",
            _sum(entries, lambda k: k.startswith("faults_") and k != "faults_injected"),
        ),
        ("corruption trials", _sum(entries, lambda k: k == "trials")),
        ("damaged objects and records", _sum(entries, lambda k: k == "faults_injected")),
        ("restores of damaged replicas: exact", _sum(entries, lambda k: k == "restored_exactly")),
        (
            "restores of damaged replicas: failed naming the damage",
            _sum(entries, lambda k: k == "failed_as_expected"),
        ),
        ("fuzzing examples", _sum(entries, lambda k: k == "examples")),
        (
            "store requests through the fault proxy",
            _sum(entries, lambda k: k in ("requests_seen", "store_requests")),
        ),
        ("transactions lost", _sum(entries, lambda k: k == "lost_transactions")),
        ("silent corruptions", _sum(entries, lambda k: k == "silent_corruptions")),
        ("wrong failures", _sum(entries, lambda k: k == "wrong_failures")),
        ("missed fallbacks", _sum(entries, lambda k: k == "missed_fallbacks")),
    ]
    out = ["| over the whole run | count |", "|---|---|"]
    out += [f"| {name} | {value:,} |" for name, value in rows]
    out.append("")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
