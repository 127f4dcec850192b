"""Typed messages: how workers and widgets report back to the screens ("messages up").

Workers never touch widgets, and widgets never reach into their screen. They
post one of these; the screen or the app handles it on the UI loop and sets
attributes on its widgets ("attributes down"). Failures travel as one
rendered line (``error: ... (hint: ...)``).
"""

from __future__ import annotations

from textual.message import Message

from litetool.storage import GenerationInfo, SegmentDetail, SegmentEntry
from litetool.tui.daemon_client import StatusView
from litetool.tui.restore_points import RestorePoints


class StatusPolled(Message):
    """A fresh reading of the engine status (in-process board or attached daemon);
    ``restarted``: the daemon was restarted since the previous reading."""

    def __init__(self, view: StatusView, *, restarted: bool = False) -> None:
        super().__init__()
        self.view = view
        self.restarted = restarted


class StatusFailed(Message):
    """The attached daemon could not be read this time."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EngineStopped(Message):
    """The in-process engine returned: ``exit_code`` as ``litetool daemon`` would exit,
    ``error`` one rendered line saying why it is not 0 (None after a clean stop)."""

    def __init__(self, exit_code: int, error: str | None) -> None:
        super().__init__()
        self.exit_code = exit_code
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


class DetailsLoaded(Message):
    """Segments of a generation were fetched for their per-transaction detail.

    ``details`` pairs each fetched entry with its detail; ``failed`` lists the
    entries that could not be fetched, ``error`` says why (one rendered line).
    """

    def __init__(
        self,
        replica_name: str,
        generation: str,
        details: list[tuple[SegmentEntry, SegmentDetail]],
        failed: list[SegmentEntry],
        error: str | None,
    ) -> None:
        super().__init__()
        self.replica_name = replica_name
        self.generation = generation
        self.details = details
        self.failed = failed
        self.error = error


class PointsStatusChanged(Message):
    """What the restore point browser says for the status line changed (a fetch
    started or ended, a "go to" resolved): the screen shows its ``status()``."""


class LoadFailed(Message):
    """Listing a replica or loading a generation failed."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error


class GotoResolved(Message):
    """The "go to" bar's text names restore point ``txid`` of ``generation``."""

    def __init__(self, generation: str, txid: int) -> None:
        super().__init__()
        self.generation = generation
        self.txid = txid


class GotoNeedsSegment(Message):
    """The "go to" bar's instant ``time_us`` lands inside segment ``entry`` of
    ``generation``, not fetched yet: fetch it, then go to the last commit at or
    before ``time_us``."""

    def __init__(self, generation: str, time_us: int, entry: SegmentEntry) -> None:
        super().__init__()
        self.generation = generation
        self.time_us = time_us
        self.entry = entry


class GotoFailed(Message):
    """The "go to" bar's text names no restore point (``error``: one rendered line)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RestoreOutput(Message):
    """One line printed by the ``litetool restore`` child of run number ``run``."""

    def __init__(self, stream: str, line: str, run: int = 0) -> None:
        super().__init__()
        self.stream = stream
        self.line = line
        self.run = run


class RestoreFinished(Message):
    """The child exited; ``error`` is a one-line failure to run it at all (the
    screen summarises a non-zero exit from the output it has shown)."""

    def __init__(self, dry_run: bool, returncode: int, error: str | None, run: int = 0) -> None:
        super().__init__()
        self.dry_run = dry_run
        self.returncode = returncode
        self.error = error
        self.run = run
