"""The timeline screen: generations of a replica and their restore points.

Top: the replica and the generations (time range, txid range, size, reason).
Picking one loads its index in an async worker and builds its
``RestorePoints`` in a thread; the restore point browser below
(``restore_point_browser``: histogram, table, picked point, "go to" bar, and
the segments it fetches for them) shows them. ``enter`` on a point opens the
restore dialog for exactly that txid. The keys ``g``, ``+``/``-`` and
``←``/``→`` are the screen's and act on the browser.

**Refreshing.** ``ctrl+r`` lists the replica again. With a live source (an
in-process engine or an attached daemon) the app hands every status reading
to ``status_read``; when the shown replica has published something since the
last one (its generation or published txid moved), the screen refreshes by
itself, at most once every ``REFRESH_SECONDS``. A refresh costs one listing
and the records written since (``replica_index``), keeps the segments already
fetched, and adds the new points to the table without moving the cursor;
when the picked point was the latest one, it follows the latest one (into a
new generation too).

Under ``FULL_LAYOUT_FROM`` columns both tables switch to their compact
layout, which fits 80 columns.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Label, Static

from litetool.storage import GenerationInfo
from litetool.tui.columns import compact_for, cursor_key, set_layout, sync_table
from litetool.tui.daemon_client import StatusView
from litetool.tui.display import render_error
from litetool.tui.footer import KeysFooter
from litetool.tui.messages import (
    GenerationsLoaded,
    GotoFailed,
    LoadFailed,
    PointsStatusChanged,
    RestorePointsLoaded,
)
from litetool.tui.options import ReplicaTarget, published_position
from litetool.tui.replica_index import CachedIndex
from litetool.tui.restore_point_browser import RestorePointBrowser
from litetool.tui.restore_points import RestorePoints
from litetool.tui.restore_screen import RestoreScreen
from litetool.tui.timeline_tables import (
    FULL_LAYOUT_FROM,
    GENERATION_COLUMNS,
    GenerationTable,
    generation_row,
)

ZOOM_KEYS = Binding.Group("Zoom", compact=True)


class TimelineScreen(Screen):
    """Browse generations and pick a restore point."""

    REFRESH_SECONDS = 2.0  # at most one refresh this often while the engine publishes

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "goto", "Go to"),
        Binding("plus,equals_sign", "zoom(1)", "Zoom in", group=ZOOM_KEYS),
        Binding("minus", "zoom(-1)", "Zoom out", group=ZOOM_KEYS),
        Binding("r", "next_replica", "Next replica"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    DEFAULT_CSS = """
    TimelineScreen { layout: vertical; }
    TimelineScreen .section { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
    TimelineScreen #replica-line { height: 1; padding: 0 1; }
    TimelineScreen #timeline-status { height: auto; padding: 0 1; }
    TimelineScreen #timeline-status.error { color: $error; }
    TimelineScreen #generations { height: auto; max-height: 25%; }
    """

    def __init__(self, targets: tuple[ReplicaTarget, ...]) -> None:
        super().__init__(id="timeline")
        self.targets: list[ReplicaTarget] = list(targets)
        self.replica_index = 0
        self._cached_indexes: dict[str, CachedIndex] = {}  # replica name -> its cached index
        self.generations: list[GenerationInfo] = []
        self.compact = False
        self.refreshes = 0  # automatic refreshes started (for tests)
        self._loading_generation: str | None = None
        self._published: tuple[str | None, int] | None = None  # the shown replica's, last seen
        self._refresh_timer: Timer | None = None
        self._last_refresh = -math.inf
        self._listing = 0  # listings of the replica under way
        self._latest_generation: str | None = None  # the last one listed

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="replica-line")
        yield Static("", id="timeline-status")
        yield Label("Generations", classes="section")
        yield GenerationTable(id="generations", cursor_type="row", zebra_stripes=True)
        yield RestorePointBrowser(id="browser")
        yield KeysFooter()

    @property
    def browser(self) -> RestorePointBrowser:
        return self.query_one("#browser", RestorePointBrowser)

    def on_mount(self) -> None:
        self._layout(self.app.size.width)
        self.query_one("#generations", DataTable).focus()
        self._show_replica_line()
        if self.target is not None:
            self.load_generations()
        else:
            self._status("no replica to browse yet")

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        """The full or compact columns for *width*; redraw the tables when they change."""
        self.compact = compact = compact_for(width, FULL_LAYOUT_FROM)
        generations = self.query_one("#generations", GenerationTable)
        if set_layout(generations, GENERATION_COLUMNS, compact):
            self._fill_generations()
        self.browser.set_compact(compact)

    def _fill_generations(self) -> None:
        compact = self.compact
        sync_table(
            self.query_one("#generations", GenerationTable),
            {info.generation: generation_row(info, compact=compact) for info in self.generations},
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_replica":
            return len(self.targets) > 1
        if action in ("goto", "step_bucket", "zoom"):
            return self.browser.points is not None
        return True

    # -- state -----------------------------------------------------------------------------

    @property
    def target(self) -> ReplicaTarget | None:
        return self.targets[self.replica_index] if self.targets else None

    def set_targets(self, targets: tuple[ReplicaTarget, ...]) -> None:
        """Replace the browsable replicas (attached mode learns them from the daemon)."""
        first = not self.targets
        self.targets = list(targets)
        self.replica_index = min(self.replica_index, max(0, len(self.targets) - 1))
        if not self.is_mounted:
            return  # on_mount shows them
        self._show_replica_line()
        self.refresh_bindings()
        if first and self.targets:
            self.load_generations()

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#timeline-status", Static)
        status.update(text)
        status.set_class(error, "error")

    @on(PointsStatusChanged)
    def _show_points_status(self) -> None:
        """The status line for the shown generation (``RestorePointBrowser.status``)."""
        status = self.browser.status()
        if status is not None:
            text, error = status
            self._status(text, error=error)

    def _show_replica_line(self) -> None:
        line = Text()
        target = self.target
        if target is None:
            line.append("no replica", style="dim")
        else:
            line.append("Replica ", style="dim")
            line.append(target.name, style="bold")
            line.append(f"  {target.url}")
            if len(self.targets) > 1:
                line.append(f"  ({self.replica_index + 1}/{len(self.targets)}, r: next)", "dim")
        self.query_one("#replica-line", Static).update(line)

    def _cached_index(self, target: ReplicaTarget) -> CachedIndex:
        cached = self._cached_indexes.get(target.name)
        if cached is None:
            cached = CachedIndex(target.open())
            self._cached_indexes[target.name] = cached
        return cached

    # -- workers ---------------------------------------------------------------------------

    @work(exclusive=True, group="generations", exit_on_error=False)
    async def load_generations(self, *, quiet: bool = False) -> None:
        """List the generations (*quiet*: a refresh, which does not say so on the status
        line)."""
        target = self.target
        if target is None:
            return
        if not quiet:
            self._status(f"listing generations of {target.name}…")
        self._listing += 1
        try:
            cached = self._cached_index(target)
            if not quiet:
                await cached.replica.ensure_format(create=False)
            generations = await cached.list_generations()
        except Exception as exc:
            self.post_message(LoadFailed(f"replica {target.name}", render_error(exc)))
            return
        finally:
            self._listing -= 1
        self.post_message(GenerationsLoaded(target.name, generations))

    @work(exclusive=True, group="points", exit_on_error=False)
    async def load_points(self, generation: str) -> None:
        target = self.target
        if target is None:
            return
        cached = self._cached_index(target)
        index = cached.latest_index(generation)  # as listed just before
        if index is None:
            self._status(f"loading generation {generation}…")
        try:
            if index is None:
                index = await cached.load_generation(generation)
            points = await asyncio.to_thread(RestorePoints, index)
        except Exception as exc:
            self.post_message(LoadFailed(f"generation {generation}", render_error(exc)))
            return
        self.post_message(RestorePointsLoaded(target.name, points))

    # -- refreshing ------------------------------------------------------------------------

    def status_read(self, view: StatusView) -> None:
        """A reading of the live status: refresh (throttled) when the shown replica has
        published something since the last reading."""
        target = self.target
        if target is None or not self.is_mounted:
            return
        published = published_position(view.databases, target)
        if published is None or published == self._published:
            return
        self._published = published
        self._refresh_soon()

    def _refresh_soon(self) -> None:
        if self._refresh_timer is not None:
            return  # one is due already: it will read everything published until then
        wait = max(0.01, self._last_refresh + self.REFRESH_SECONDS - time.monotonic())
        self._refresh_timer = self.set_timer(wait, self._refresh)

    def _refresh(self) -> None:
        self._refresh_timer = None
        self._last_refresh = time.monotonic()
        if self._listing:
            # A slow store: let the listing finish (a new one would cancel it) and
            # look again once it has.
            self._refresh_soon()
            return
        self.refreshes += 1
        self.load_generations(quiet=True)

    # -- messages up -----------------------------------------------------------------------

    @on(GenerationsLoaded)
    def _generations_loaded(self, message: GenerationsLoaded) -> None:
        if self.target is None or message.replica_name != self.target.name:
            return
        table = self.query_one("#generations", DataTable)
        previous = cursor_key(table)
        self.generations = message.generations
        self._fill_generations()
        if not message.generations:
            self._status(f"{self.target.name} has no generations yet")
            self._loading_generation = None
            self.browser.show(None)
            return
        if self.browser.points is None:
            self._status(
                f"{len(message.generations)} generation(s); "
                "enter: restore points, g: go to a time, r: next replica"
            )
        keys = [info.generation for info in message.generations]
        # The latest point of the latest generation was picked: follow it, into a new
        # generation too. Otherwise stay where the cursor is.
        following = self.browser.follow and previous == self._latest_generation
        self._latest_generation = keys[-1]
        row = keys.index(previous) if previous in keys and not following else len(keys) - 1
        if table.cursor_row != row:
            table.move_cursor(row=row)
        self._open_generation(keys[row], reload=True)

    @on(RestorePointsLoaded)
    def _points_loaded(self, message: RestorePointsLoaded) -> None:
        if self.target is None or message.replica_name != self.target.name:
            return
        if message.points.generation != self._loading_generation:
            return
        browser = self.browser
        if browser.points is not None and browser.points.generation == message.points.generation:
            browser.update(message.points)
        else:
            browser.show(message.points, self._cached_index(self.target).replica)
        self._show_points_status()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self._status(f"{message.what}: {message.error}", error=True)

    # -- generations -----------------------------------------------------------------------

    def _open_generation(self, generation: str, *, reload: bool = False) -> None:
        """Show *generation* (*reload*: its points again, if it is shown already and
        the last listing found it changed)."""
        points = self.browser.points
        if generation == self._loading_generation and points is not None:
            if not reload or points.generation != generation or self.target is None:
                return
            if self._cached_index(self.target).latest_index(generation) is points.index:
                return  # the same records as when it was loaded: nothing new
        self._loading_generation = generation
        self.load_points(generation)

    @on(DataTable.RowHighlighted, "#generations")
    def _generation_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._open_generation(event.row_key.value)

    @on(DataTable.RowSelected, "#generations")
    def _generation_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._open_generation(event.row_key.value)
        self.query_one("#points", DataTable).focus()

    # -- restore points --------------------------------------------------------------------

    @on(DataTable.RowSelected, "#points")
    def _point_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.browser.picked_txid = int(event.row_key.value)
            self.action_restore()

    # -- actions ---------------------------------------------------------------------------

    def action_next_replica(self) -> None:
        if len(self.targets) < 2:
            return
        self.replica_index = (self.replica_index + 1) % len(self.targets)
        self._show_replica_line()
        self._loading_generation = None
        self._published = None
        self.browser.follow = True
        self._latest_generation = None
        self.generations = []
        self.query_one("#generations", DataTable).clear()
        self.browser.show(None)
        self.load_generations()

    def action_reload(self) -> None:
        self.load_generations()

    def action_step_bucket(self, direction: int) -> None:
        self.browser.step_bucket(direction)

    def action_zoom(self, direction: int) -> None:
        self.browser.zoom_by(direction)

    def action_focus_generations(self) -> None:
        self.query_one("#generations", DataTable).focus()

    def action_restore(self) -> None:
        point = self.browser.picked_point()
        target = self.target
        if point is None or target is None:
            return
        self.app.push_screen(RestoreScreen(target, point))

    # -- go to a txid or a time ------------------------------------------------------------

    def action_goto(self) -> None:
        self.browser.open_goto()

    @on(GotoFailed)
    def _goto_failed(self, message: GotoFailed) -> None:
        self._status(message.error, error=True)
