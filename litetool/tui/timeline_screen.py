"""The timeline screen: generations of a replica and their restore points.

Top: the generations (time range, txid range, size, reason). Picking one
loads its index in an async worker and builds its ``RestorePoints`` in a
thread; the histogram shows commits over time, the table one row per restore
point (txid, commit time, gap to the previous commit, db size, where it is
stored). The table holds a window of ``WINDOW_ROWS`` points around the
cursor and slides when the cursor reaches an edge, so a generation with
millions of transactions stays fast. ``enter`` on a point opens the restore
dialog for exactly that txid.

Only the index records are loaded to open a generation; they summarise each
segment, so the commit time and size of a transaction inside a segment are
pending (``…``) until that segment is fetched. Once the view settles
(``DETAILS_DELAY_SECONDS``), the screen fetches the segments that the rows on
screen and the picked point need, and nothing else, in a worker
(``Replica.fetch_detail``); the status line says what it is fetching. ``g``
opens the "go to" bar (``goto_bar``), which reads a txid or a time against the
shown generation; a time lands where ``litetool restore --at`` would in this
generation, and when that falls inside a segment not fetched yet, the screen
fetches that one segment first and goes there once it has arrived.

**Refreshing.** ``ctrl+r`` lists the replica again. With a live source (an
in-process engine or an attached daemon) the app hands every status reading
to ``status_read``; when the shown replica has published something since the
last one (its generation or published txid moved), the screen refreshes by
itself, at most once every ``REFRESH_SECONDS``. A refresh costs one listing
and the records written since (``replica_index``), keeps the segments already
fetched, and adds the new points to the table without moving the cursor;
when the picked point was the latest one, it follows the latest one (into a
new generation too).

**Zoom.** ``+``/``-`` change what one histogram column covers (``zoom``): the
whole generation, or a day, an hour, a minute or a second; ``←``/``→`` then
step to the previous or next such slice with commits.

Under ``FULL_LAYOUT_FROM`` columns both tables switch to their compact
layout, which fits 80 columns.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from litetool.errors import LitetoolError
from litetool.storage import DetailNeeded, GenerationInfo, SegmentEntry
from litetool.tui import zoom
from litetool.tui.columns import compact_for, set_layout, sync_table
from litetool.tui.commit_histogram import CommitHistogram
from litetool.tui.daemon_client import StatusView
from litetool.tui.display import format_bytes, format_time_us
from litetool.tui.footer import KeysFooter
from litetool.tui.goto_bar import GotoBar
from litetool.tui.messages import (
    DetailsLoaded,
    GenerationsLoaded,
    GotoFailed,
    GotoNeedsSegment,
    GotoResolved,
    LoadFailed,
    RestorePointsLoaded,
)
from litetool.tui.options import ReplicaTarget, published_position
from litetool.tui.replica_index import IndexReader
from litetool.tui.restore_points import RestorePoint, RestorePoints
from litetool.tui.restore_screen import RestoreScreen
from litetool.tui.segment_details import DetailRequests, fetch_segment_details
from litetool.tui.timeline_tables import (
    FULL_LAYOUT_FROM,
    GENERATION_COLUMNS,
    PENDING,
    POINT_COLUMNS,
    GenerationTable,
    RestorePointTable,
    generation_row,
)
from litetool.tui.zoom import WHOLE
from litetool.wording import plural

ZOOM_KEYS = Binding.Group("Zoom", compact=True)


def render_error(exc: BaseException) -> str:
    """One line for any failure (LitetoolError renders itself with its hint)."""
    if isinstance(exc, LitetoolError):
        return exc.render()
    return f"error: {type(exc).__name__}: {exc}"


class TimelineScreen(Screen):
    """Browse generations and pick a restore point."""

    WINDOW_ROWS = 1000
    DETAILS_DELAY_SECONDS = 0.1  # fetch for the rows on screen once scrolling pauses this long
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
    TimelineScreen #points { height: 1fr; }
    TimelineScreen #picked {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, targets: tuple[ReplicaTarget, ...]) -> None:
        super().__init__(id="timeline")
        self.targets: list[ReplicaTarget] = list(targets)
        self.replica_index = 0
        self._readers: dict[str, IndexReader] = {}  # replica name -> its reader
        self.generations: list[GenerationInfo] = []
        self.points: RestorePoints | None = None
        self.window: tuple[int, int] | None = None
        self.picked_txid: int | None = None
        self.zoom = WHOLE
        self.compact = False
        self.refreshes = 0  # automatic refreshes started (for tests)
        self._loading_generation: str | None = None
        self._details = DetailRequests()  # of the shown generation
        self._details_timer: Timer | None = None
        self._published: tuple[str | None, int] | None = None  # the shown replica's, last seen
        self._refresh_timer: Timer | None = None
        self._last_refresh = -math.inf
        self._listing = 0  # listings of the replica under way
        self._follow = True  # the picked point is the latest: the next refresh follows it
        self._latest_generation: str | None = None  # the last one listed

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="replica-line")
        yield Static("", id="timeline-status")
        yield Label("Generations", classes="section")
        yield GenerationTable(id="generations", cursor_type="row", zebra_stripes=True)
        yield Label("Commits over time", classes="section", id="histogram-title")
        yield CommitHistogram(id="histogram")
        yield Label("Restore points", classes="section")
        yield RestorePointTable(id="points", cursor_type="row", zebra_stripes=True)
        yield Static("", id="picked")
        yield GotoBar(id="goto")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._layout(self.app.size.width)
        self._show_zoom()
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
        points = self.query_one("#points", RestorePointTable)
        points.compact = compact
        if set_layout(points, POINT_COLUMNS, compact) and self.points is not None:
            self.window = None
            if self.picked_txid is not None:
                self.pick(self.picked_txid)

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
            return self.points is not None
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

    def _show_points_status(self) -> None:
        """The status line for the shown generation: its range, what is being fetched,
        and the last failure to fetch a segment."""
        points = self.points
        if points is None:
            return
        text = (
            f"generation {points.generation}: {plural(len(points), 'restore point')} "
            f"(txids {points.first_txid}..{points.last_txid})"
        )
        details = self._details
        if details.goto_time_us is not None:
            when = format_time_us(details.goto_time_us)
            text += f"; finding the last commit at or before {when} UTC"
        if not details.idle:
            text += f"; {details.describe()}"
        if details.error is not None:
            text += f"; {details.error}"
        self._status(text, error=details.error is not None)

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

    def _reader(self, target: ReplicaTarget) -> IndexReader:
        reader = self._readers.get(target.name)
        if reader is None:
            reader = IndexReader(target.open())
            self._readers[target.name] = reader
        return reader

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
            reader = self._reader(target)
            if not quiet:
                await reader.replica.ensure_format(create=False)
            generations = await reader.list_generations()
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
        reader = self._reader(target)
        index = reader.latest_index(generation)  # as listed just before
        if index is None:
            self._status(f"loading generation {generation}…")
        try:
            if index is None:
                index = await reader.load_generation(generation)
            points = await asyncio.to_thread(RestorePoints, index)
        except Exception as exc:
            self.post_message(LoadFailed(f"generation {generation}", render_error(exc)))
            return
        self.post_message(RestorePointsLoaded(target.name, points))

    @work(group="details", exit_on_error=False)
    async def fetch_details(
        self, replica_name: str, generation: str, entries: list[SegmentEntry]
    ) -> None:
        """Fetch the segments *entries* for their per-transaction detail and report
        what arrived and what failed."""
        target = next((t for t in self.targets if t.name == replica_name), None)
        if target is None:  # no longer browsable: nothing to fetch from
            self.post_message(DetailsLoaded(replica_name, generation, [], entries, None))
            return
        replica = self._reader(target).replica
        details, failures = await fetch_segment_details(replica, entries)
        error = None
        if failures:
            entry, exc = failures[0]
            error = (
                f"segment {entry.digest[:12]} (txids {entry.first_txid}..{entry.last_txid}): "
                f"{render_error(exc)}"
            )
        self.post_message(
            DetailsLoaded(
                replica_name, generation, details, [entry for entry, _ in failures], error
            )
        )

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
        previous = self._cursor_key(table)
        self.generations = message.generations
        self._fill_generations()
        if not message.generations:
            self._status(f"{self.target.name} has no generations yet")
            self._loading_generation = None
            self._show_points(None)
            return
        if self.points is None:
            self._status(
                f"{len(message.generations)} generation(s); "
                "enter: restore points, g: go to a time, r: next replica"
            )
        keys = [info.generation for info in message.generations]
        # The latest point of the latest generation was picked: follow it, into a new
        # generation too. Otherwise stay where the cursor is.
        following = self._follow and previous == self._latest_generation
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
        if self.points is not None and self.points.generation == message.points.generation:
            self._update_points(message.points)
        else:
            self._show_points(message.points)
        self._show_points_status()

    @on(DetailsLoaded)
    def _details_loaded(self, message: DetailsLoaded) -> None:
        points = self.points
        if (
            self.target is None
            or message.replica_name != self.target.name
            or points is None
            or points.generation != message.generation
        ):
            return  # for a generation no longer shown (its fetches were cancelled)
        self._details.finish((entry for entry, _ in message.details), message.failed, message.error)
        for entry, detail in message.details:
            try:
                attached = points.attach_detail(entry, detail)
            except ValueError as exc:  # fetch_detail verified it: a bug, but say so, go on
                self._details.finish((), [entry], f"error: {exc}")
                continue
            if attached:
                self._redraw_rows(points, entry.first_txid, entry.last_txid + 1)
        self._show_histogram()
        self._show_picked()
        if self._details.goto_time_us is not None:
            self._goto_time(self._details.goto_time_us)
        self._show_points_status()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self._status(f"{message.what}: {message.error}", error=True)

    # -- generations -----------------------------------------------------------------------

    @staticmethod
    def _cursor_key(table: DataTable) -> str | None:
        if not table.row_count:
            return None
        with contextlib.suppress(Exception):
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None

    def _open_generation(self, generation: str, *, reload: bool = False) -> None:
        """Show *generation* (*reload*: its points again, if it is shown already and
        the last listing found it changed)."""
        points = self.points
        if generation == self._loading_generation and points is not None:
            if not reload or points.generation != generation or self.target is None:
                return
            if self._reader(self.target).latest_index(generation) is points.index:
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

    def _show_points(self, points: RestorePoints | None) -> None:
        self.workers.cancel_group(self, "details")
        self._details.clear()
        self.points = points
        self.query_one("#goto", GotoBar).points = points
        self.window = None
        table = self.query_one("#points", DataTable)
        table.clear()
        if points is None:
            self.picked_txid = None
            self._show_histogram()
            self._show_picked()
            self.refresh_bindings()
            return
        if self.zoom not in self._zoom_levels():
            self.zoom = WHOLE
            self._show_zoom()
        keep = self.picked_txid if self.picked_txid in points else points.last_txid
        if self._follow:
            keep = points.last_txid
        self.pick(keep)
        self.refresh_bindings()

    def _update_points(self, points: RestorePoints) -> None:
        """The shown generation, loaded again (a refresh): keep what was fetched, add
        the new points to the table, keep the cursor (or follow the latest point)."""
        old = self.points
        assert old is not None
        if points.same_as(old):
            return  # nothing new: keep the one with its details
        if points.first_txid != old.first_txid:
            self._show_points(points)
            return
        points.adopt_details(old)
        self.points = points
        self.query_one("#goto", GotoBar).points = points
        window = self.window
        table = self.query_one("#points", RestorePointTable)
        new_rows = points.last_txid - old.last_txid
        if window is not None and window[1] == old.last_txid and new_rows > 0:
            if window[1] - window[0] + 1 + new_rows <= 2 * self.WINDOW_ROWS:
                table.append(points, old.last_txid + 1, points.last_txid)
                self.window = (window[0], points.last_txid)
            elif not self._follow:
                pass  # the window slides to the new points when the cursor gets there
            else:
                self.window = None  # refilled around the latest point below
        if self._follow:
            self.pick(points.last_txid)
        else:
            self._show_histogram()
            self._show_picked()
            self._schedule_details()
        self.refresh_bindings()

    def pick(self, txid: int) -> None:
        """Make *txid* the picked restore point: slide the window, move the cursor."""
        points = self.points
        if points is None:
            return
        txid = points.clamp(txid)
        if self.window is None or not self.window[0] <= txid <= self.window[1]:
            self._fill_window(txid)
        assert self.window is not None
        self.picked_txid = txid
        self._follow = txid == points.last_txid
        table = self.query_one("#points", DataTable)
        table.move_cursor(row=txid - self.window[0])
        self._show_histogram()
        self._show_picked()
        self._schedule_details()

    def _show_histogram(self) -> None:
        self.query_one("#histogram", CommitHistogram).show(self.points, self.picked_txid, self.zoom)

    def _fill_window(self, around_txid: int) -> None:
        points = self.points
        assert points is not None
        first, last = points.window(around_txid, self.WINDOW_ROWS)
        self.query_one("#points", RestorePointTable).fill(points, first, last)
        self.window = (first, last)

    def _redraw_rows(self, points: RestorePoints, first_txid: int, last_txid: int) -> None:
        """Redraw the rows of txids ``first_txid..last_txid`` that are in the window."""
        if self.window is not None:
            first, last = max(first_txid, self.window[0]), min(last_txid, self.window[1])
            self.query_one("#points", RestorePointTable).redraw(points, first, last)

    # -- segment details -------------------------------------------------------------------

    def _schedule_details(self) -> None:
        """Fetch what the rows on screen and the picked point need once the view has
        not moved for ``DETAILS_DELAY_SECONDS`` (holding a key down fetches nothing
        for the rows it only passes)."""
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(self.DETAILS_DELAY_SECONDS, self._request_details)

    @property
    def details_settled(self) -> bool:
        """Nothing scheduled or being fetched for the shown generation."""
        return self._details_timer is None and self._details.idle

    def _request_details(self) -> None:
        self._details_timer = None
        points, window = self.points, self.window
        if points is None or window is None:
            return
        rows = self.query_one("#points", RestorePointTable).visible_rows()
        wanted: list[SegmentEntry] = []
        if rows:
            wanted += points.missing_details(window[0] + rows.start, window[0] + rows.stop - 1)
        if self.picked_txid is not None:
            wanted += points.missing_details(self.picked_txid, self.picked_txid)
        self._fetch(wanted)

    def _fetch(self, entries: list[SegmentEntry], *, retry: bool = False) -> None:
        """Start fetching those of *entries* not being fetched already (nor failed
        before, unless *retry*)."""
        points, target = self.points, self.target
        if points is None or target is None:
            return
        new = self._details.start(entries, retry=retry)
        if not new:
            return
        self.fetch_details(target.name, points.generation, new)
        self._show_points_status()

    @on(RestorePointTable.ViewportMoved)
    def _viewport_moved(self) -> None:
        self._schedule_details()

    @on(DataTable.RowHighlighted, "#points")
    def _point_highlighted(self, event: DataTable.RowHighlighted) -> None:
        points, window = self.points, self.window
        if points is None or window is None or event.row_key.value is None:
            return
        if self._cursor_key(event.data_table) != event.row_key.value:
            return  # stale: the window was refilled after this event was sent
        txid = int(event.row_key.value)
        at_edge = (txid == window[0] and txid > points.first_txid) or (
            txid == window[1] and txid < points.last_txid
        )
        if at_edge:
            self.window = None  # slide: refill centred on this point
            self.pick(txid)
            return
        if txid != self.picked_txid:
            self.picked_txid = txid
            self._follow = txid == points.last_txid
            self._show_histogram()
            self._show_picked()
            self._schedule_details()

    @on(DataTable.RowSelected, "#points")
    def _point_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.picked_txid = int(event.row_key.value)
            self.action_restore()

    def picked_point(self) -> RestorePoint | None:
        if self.points is None or self.picked_txid is None:
            return None
        return self.points.point(self.picked_txid)

    def _show_picked(self) -> None:
        point = self.picked_point()
        line = Text()
        if point is None:
            line.append("no restore point picked", style="dim")
        else:
            # What matters first, the generation last: 80 columns cut the end (…).
            line.append("Restore point ", style="dim")
            line.append(f"txid {point.txid}", style="bold")
            line.append(" committed ", style="dim")
            if point.time_us is None:
                line.append(PENDING, style="bold")
            else:
                line.append(format_time_us(point.time_us) + " UTC", style="bold")
            size = point.db_size_bytes
            line.append(f", db {PENDING if size is None else format_bytes(size)}", style="dim")
            if point.pending:
                line.append(f" (in segment {point.segment_number}, not fetched yet)", style="dim")
            line.append(f", generation {point.generation}", style="dim")
        self.query_one("#picked", Static).update(line)

    # -- actions ---------------------------------------------------------------------------

    def action_next_replica(self) -> None:
        if len(self.targets) < 2:
            return
        self.replica_index = (self.replica_index + 1) % len(self.targets)
        self._show_replica_line()
        self._loading_generation = None
        self._published = None
        self._follow = True
        self._latest_generation = None
        self.generations = []
        self.query_one("#generations", DataTable).clear()
        self._show_points(None)
        self.load_generations()

    def action_reload(self) -> None:
        self.load_generations()

    def action_step_bucket(self, direction: int) -> None:
        if self.points is None or self.picked_txid is None:
            return
        histogram = self.query_one("#histogram", CommitHistogram)
        self.pick(
            self.points.step_bucket(self.picked_txid, direction, histogram.buckets, self.zoom)
        )

    def _zoom_levels(self) -> list[int]:
        points = self.points
        if points is None:
            return [WHOLE]
        columns = self.query_one("#histogram", CommitHistogram).buckets
        return zoom.ladder(points.last_time_us - points.first_time_us, columns)

    def action_zoom(self, direction: int) -> None:
        """One zoom level finer (1) or coarser (-1)."""
        points = self.points
        if points is None:
            return
        columns = self.query_one("#histogram", CommitHistogram).buckets
        level = zoom.step(self.zoom, direction, points.last_time_us - points.first_time_us, columns)
        if level == self.zoom:
            finest = "finest" if direction > 0 else "widest"
            self.notify(f"already at the {finest} zoom for this generation", timeout=2)
            return
        self.zoom = level
        self._show_zoom()
        self._show_histogram()

    def _show_zoom(self) -> None:
        self.query_one("#histogram-title", Label).update(
            f"Commits over time: {zoom.describe(self.zoom)}"
        )

    def action_focus_generations(self) -> None:
        self.query_one("#generations", DataTable).focus()

    def action_restore(self) -> None:
        point = self.picked_point()
        target = self.target
        if point is None or target is None:
            return
        self.app.push_screen(RestoreScreen(target, point))

    # -- go to a txid or a time ------------------------------------------------------------

    def action_goto(self) -> None:
        self.query_one("#goto", GotoBar).open()

    @on(GotoResolved)
    def _goto_resolved(self, message: GotoResolved) -> None:
        if self.points is None or message.generation != self.points.generation:
            return  # read against a generation no longer shown
        self._close_goto()
        self._details.goto_time_us = None  # supersedes one still waiting for a segment
        self.pick(message.txid)
        self._show_points_status()

    @on(GotoNeedsSegment)
    def _goto_needs_segment(self, message: GotoNeedsSegment) -> None:
        if self.points is None or message.generation != self.points.generation:
            return  # read against a generation no longer shown
        # Fetch it (again if it failed before: this is asking again), then go there
        # once it has arrived (_details_loaded).
        self._close_goto()
        self._details.goto_time_us = message.time_us
        self._fetch([message.entry], retry=True)
        self._show_points_status()

    @on(GotoFailed)
    def _goto_failed(self, message: GotoFailed) -> None:
        self._status(message.error, error=True)

    def _goto_time(self, time_us: int) -> None:
        """Finish a "go to a time" that waited for a segment."""
        points = self.points
        if points is None:
            return
        self._details.goto_time_us = None
        try:
            found = points.at_or_before(time_us)
        except DetailNeeded as need:
            if self._details.has_failed(need.entry):
                return  # its fetch failed: the status line says why
            self._details.goto_time_us = time_us
            self._fetch([need.entry])
            return
        if found is not None:  # (None only before the first point, known without fetching)
            self.pick(found)

    def _close_goto(self) -> None:
        self.query_one("#goto", GotoBar).close()
        self.query_one("#points", DataTable).focus()

    def on_key(self, event) -> None:
        if event.key == "escape" and self.query_one("#goto", GotoBar).has_focus:
            event.stop()
            self._close_goto()
