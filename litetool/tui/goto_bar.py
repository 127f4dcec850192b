"""The timeline's "go to" bar: a txid or a time, typed, read as a restore point.

``g`` on the timeline opens the bar under the restore points (``open``); the
restore point browser (``restore_point_browser``) closes it (``close``) and
says where the focus goes. On ``enter`` the bar reads its text against the
shown generation (``points``, set by the browser: attributes down) and posts
what it found (messages up, see ``messages``):

- ``#txid`` or a bare number is that restore point (``GotoResolved``);
- anything else is an instant (``litetool.timespec``: ``2026-11-25T04:38Z``,
  ``-15m``, ``2h ago``) and lands where ``litetool restore --at`` would in this
  generation (``RestorePoints.at_or_before``): on the last commit at or before
  it (``GotoResolved``) or, when that lies inside a segment not fetched yet, on
  whatever that segment says once fetched (``GotoNeedsSegment``: the browser
  fetches it and waits, along with its other fetches);
- text that names no restore point is one line saying why (``GotoFailed``), and
  the bar stays open to correct it.
"""

from __future__ import annotations

from textual import on
from textual.widgets import Input

from litetool.storage import DetailNeeded
from litetool.timespec import parse_instant, to_us
from litetool.tui.display import format_time_us
from litetool.tui.messages import GotoFailed, GotoNeedsSegment, GotoResolved
from litetool.tui.restore_points import RestorePoints

PLACEHOLDER = (
    "go to: 2026-11-25T04:38Z, -15m, 2h ago (latest commit at or before), "
    "or #txid; escape to cancel"
)


def parse_goto(text: str, points: RestorePoints) -> GotoResolved | GotoNeedsSegment:
    """What *text* goes to in *points* (see the module docstring); ValueError with a
    one-line message when it names no restore point."""
    text = text.strip()
    if text.startswith("#") or text.isdigit():
        txid = int(text.lstrip("#"))
        if txid not in points:
            raise ValueError(
                f"txid {txid} is not in this generation ({points.first_txid}..{points.last_txid})"
            )
        return GotoResolved(points.generation, txid)
    moment_us = to_us(parse_instant(text))
    try:
        found = points.at_or_before(moment_us)
    except DetailNeeded as need:
        return GotoNeedsSegment(points.generation, moment_us, need.entry)
    if found is None:
        raise ValueError(
            f"nothing committed at or before {format_time_us(moment_us)} UTC in "
            f"this generation (first commit {format_time_us(points.first_commit_time_us)})"
        )
    return GotoResolved(points.generation, found)


class GotoBar(Input):
    """Hidden until ``open``; set ``points`` whenever the shown generation changes."""

    DEFAULT_CSS = """
    GotoBar { display: none; }
    GotoBar.shown { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder=PLACEHOLDER, id=id)
        self.points: RestorePoints | None = None

    def open(self) -> None:
        """Show the bar, empty, with the focus."""
        self.add_class("shown")
        self.value = ""
        self.focus()

    def close(self) -> None:
        self.remove_class("shown")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()  # the browser hears what the text means, not the text
        if self.points is None:
            return
        try:
            found = parse_goto(event.value, self.points)
        except ValueError as exc:
            self.post_message(GotoFailed(f"error: {exc}"))
            return
        self.post_message(found)
