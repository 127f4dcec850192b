"""Structured logging: one line per event, logfmt (``key=value``) or JSON.

The engine calls a ``log(level, event, **fields)`` function handed to it;
``make_log`` builds one for the CLI. Secrets never reach this module: fields
carry display URLs and redacted values only.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

LogFunction = Callable[..., None]


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e3):03d}Z"


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n'):
        return json.dumps(text)
    return text


def make_log(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> LogFunction:
    """A thread-safe log function writing to ``stream`` (default stderr).

    Logging never stops the caller: a line that cannot be written (a full
    disk) is dropped, and once the reader of a pipe is gone (``litetool
    replicate | head``) the stream is pointed at /dev/null, so a signal still
    stops the daemon cleanly and nothing complains at exit."""
    threshold = LEVELS[level]
    lock = threading.Lock()
    reader_gone = False

    def log(event_level: str, event: str, **fields: object) -> None:
        if LEVELS[event_level] < threshold:
            return
        out = stream or sys.stderr
        if fmt == "json":
            line = json.dumps(
                {"time": _timestamp(), "level": event_level, "event": event, **fields},
                default=str,
            )
        else:
            parts = [
                f"time={_timestamp()}",
                f"level={event_level}",
                f"event={_logfmt_value(event)}",
            ]
            parts += [f"{key}={_logfmt_value(value)}" for key, value in fields.items()]
            line = " ".join(parts)
        nonlocal reader_gone
        with lock:
            if reader_gone:
                return
            try:
                out.write(line + "\n")
                out.flush()
            except BrokenPipeError:
                reader_gone = True
                _point_at_devnull(out)
            except (OSError, ValueError):
                pass  # this line is lost; the next may go through

    return log


def _point_at_devnull(stream: TextIO) -> None:
    """Let writes to *stream* (and its pending buffer, at exit) go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
