"""Turn the figures of a reliability run into docs/reliability.md.

    .venv/bin/python tests/reliability/report.py FIGURES.jsonl COMMAND...

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
    figures_path = Path(sys.argv[1])
    command = " ".join(sys.argv[2:]) or "make reliability"
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
    lines.append(f"{len(entries)} scenarios, {total / 60:.1f} minutes of tests.\n")
    keys = ["lost_transactions", "silent_corruptions"]
    lost = sum(int(e.get(k, 0)) for e in entries for k in keys)
    lines.append(f"Transactions lost and silent corruptions over the whole run: **{lost}**.\n")
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


if __name__ == "__main__":
    raise SystemExit(main())
