"""The README's first command (``make demo`` runs ``python -m litetool.demo``) works."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_replicates_and_restores_the_latest_state_and_a_past_instant(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "litetool.demo", "--dir", str(tmp_path / "demo"), "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4. latest restore:" in result.stdout and "matches the source\n" in result.stdout
    assert "matches the source at that instant" in result.stdout
    assert "DIFFERS" not in result.stdout
