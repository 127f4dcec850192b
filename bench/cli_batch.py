"""Many litetool CLI calls in one Python process, for the lag bench's snapshot restores.

The lag bench restores hundreds of small snapshots. Through ``python -m
litetool`` each restore would pay interpreter start and imports (about half a
second here), which is not what is measured: only *what* each snapshot
restores matters. So a worker process imports the CLI once and runs
``litetool.cli.main(argv)`` for each request: the same code path as the
command line, argument parsing included.

Protocol (one JSON object per line): request ``{"argv": [...]}``; reply
``{"rc": int, "seconds": float, "stdout": str, "stderr": str}``.

    python bench/cli_batch.py      # serves requests on stdin/stdout
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]


class CliBatch:
    """Client side: one worker process; ``run`` is thread-safe (calls are serialised)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_DIR,
        )
        self._lock = threading.Lock()

    def run(self, argv: list[str]) -> tuple[int, str]:
        """(exit code, stderr) of ``litetool ARGV``."""
        reply = self.call(argv)
        return reply["rc"], reply["stderr"]

    def call(self, argv: list[str]) -> dict:
        """The whole reply to ``litetool ARGV``: rc, seconds, stdout, stderr."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("litetool batch worker died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def serve() -> None:
    sys.path.insert(0, str(REPO_DIR))
    from litetool.cli import main as litetool_main

    out = sys.stdout
    for line in sys.stdin:
        argv = json.loads(line)["argv"]
        captured, printed = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(captured):
            try:
                rc = int(litetool_main(argv) or 0)
            except SystemExit as exc:  # argparse errors
                rc = exc.code if isinstance(exc.code, int) else 1
        seconds = time.perf_counter() - started
        out.write(json.dumps({"rc": rc, "seconds": seconds, "stdout": printed.getvalue(),
                              "stderr": captured.getvalue()}))
        out.write("\n")
        out.flush()


if __name__ == "__main__":
    serve()
