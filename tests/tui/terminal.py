"""Running a ``litetool`` command in a real pseudo-terminal (80x24), as a user does."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>]"
)
LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"


@dataclass
class Session:
    pid: int
    fd: int
    output: bytes = b""

    def read_until(self, needle: bytes, timeout: float = 30.0) -> None:
        """Read the terminal until *needle* appears (AssertionError after *timeout*)."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{needle!r} never appeared:\n{self.text()[-2000:]}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, min(timeout, 0.2)))
        if ready:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not data:
                return False
            self.output += data
        return True

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 30.0) -> int:
        """Read until the child exits; its exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read(0.1):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self._read(0.2)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {timeout}s:\n{self.text()[-2000:]}")

    def text(self) -> str:
        return ANSI.sub(b"", self.output).decode("utf-8", "replace")

    def after_screen(self) -> str:
        """What the command printed once its screen was gone."""
        tail = self.output.rsplit(LEAVE_ALTERNATE_SCREEN, 1)[-1]
        return ANSI.sub(b"", tail).decode("utf-8", "replace")


def start(args: list[str], *, cwd: str, size: tuple[int, int] = (80, 24)) -> Session:
    """``python -m litetool ARGS`` in a new pseudo-terminal of *size* (columns, rows)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(cwd)
        env = {k: v for k, v in os.environ.items() if k != "LITETOOL_CONFIG"}
        env["TERM"] = "xterm-256color"
        os.execvpe(sys.executable, [sys.executable, "-m", "litetool", *args], env)
    columns, rows = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return Session(pid, fd)
