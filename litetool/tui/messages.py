"""Typed messages: how workers report back to the screens ("messages up").

Workers never touch widgets. They post one of these; the screen or the app
handles it on the UI loop and sets attributes on its widgets ("attributes
down"). Failures travel as one rendered line (``error: ... (hint: ...)``).
"""

from __future__ import annotations

from textual.message import Message

from litetool.storage import GenerationInfo
from litetool.tui.daemon_client import StatusView
from litetool.tui.restore_points import RestorePoints


class StatusPolled(Message):
    """A fresh reading of the engine status (in-process board or attached daemon)."""

    def __init__(self, view: StatusView) -> None:
        super().__init__()
        self.view = view


class StatusFailed(Message):
    """The attached daemon could not be read this time."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EngineStopped(Message):
    """The in-process engine returned (``error`` is None after a clean stop)."""

    def __init__(self, error: str | None) -> None:
        super().__init__()
        self.error = error


class GenerationsLoaded(Message):
    def __init__(self, replica_name: str, generations: list[GenerationInfo]) -> None:
        super().__init__()
        self.replica_name = replica_name
        self.generations = generations


class RestorePointsLoaded(Message):
    def __init__(self, replica_name: str, points: RestorePoints) -> None:
        super().__init__()
        self.replica_name = replica_name
        self.points = points


class LoadFailed(Message):
    """Listing a replica or loading a generation failed."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error


class RestoreOutput(Message):
    """One line printed by the ``litetool restore`` child."""

    def __init__(self, stream: str, line: str) -> None:
        super().__init__()
        self.stream = stream
        self.line = line


class RestoreFinished(Message):
    """The child exited; ``error`` is its one-line failure, None on success."""

    def __init__(self, dry_run: bool, returncode: int, error: str | None) -> None:
        super().__init__()
        self.dry_run = dry_run
        self.returncode = returncode
        self.error = error
