"""Reading a running app in pilot tests: the screen as plain text, and waiting for a state."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot


def screen_text(app: App) -> str:
    """What the terminal shows right now, as plain text (like ``export_screenshot``)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def wait_for(
    pilot: Pilot, predicate: Callable[[], object], *, timeout: float = 20.0, what: str = ""
) -> None:
    """Let the app run until *predicate* holds (AssertionError after *timeout* seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            await pilot.pause()  # let the screen repaint what made it true
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}\n{screen_text(pilot.app)}")
