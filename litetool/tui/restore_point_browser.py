"""The timeline's restore points: one generation's histogram, table, picked point and
"go to" bar.

``RestorePointBrowser`` shows the ``RestorePoints`` of the generation the
screen picked (``show``; the same generation loaded again by a refresh:
``update``, attributes down). The histogram shows commits over time, the
table one row per restore point (txid, commit time, gap to the previous
commit, db size, where it is stored). The table holds a window of
``WINDOW_ROWS`` points around the cursor and slides when the cursor reaches an
edge, so a generation with millions of transactions stays fast.

Only the index records are loaded to open a generation; they summarise each
segment, so the commit time and size of a transaction inside a segment are
pending (``…``) until that segment is fetched. Once the view settles
(``DETAILS_DELAY_SECONDS``), the browser fetches the segments that the rows on
screen and the picked point need, and nothing else, in a worker
(``Replica.fetch_detail``, from the replica ``show`` was given). The "go to"
bar (``goto_bar``) reads a txid or a time against the shown generation; a time
lands where ``litetool restore --at`` would in this generation, and when that
falls inside a segment not fetched yet, the browser fetches that one segment
first and goes there once it has arrived. What it is fetching and the last
failure belong on the screen's status line (``status``; ``PointsStatusChanged``
when they change, messages up).

**Zoom.** ``zoom_by`` changes what one histogram column covers (``zoom``): the
whole generation, or a day, an hour, a minute or a second; ``step_bucket``
then steps to the previous or next such slice with commits. The keys are the
screen's (they work wherever the focus is); its actions call these.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Label, Static

from litetool.storage import DetailNeeded, Replica, SegmentEntry
from litetool.tui import zoom
from litetool.tui.columns import cursor_key, set_layout
from litetool.tui.commit_histogram import CommitHistogram
from litetool.tui.display import format_bytes, format_time_us, render_error
from litetool.tui.goto_bar import GotoBar
from litetool.tui.messages import (
    DetailsLoaded,
    GotoNeedsSegment,
    GotoResolved,
    PointsStatusChanged,
)
from litetool.tui.restore_points import RestorePoint, RestorePoints
from litetool.tui.segment_details import DetailRequests, fetch_segment_details
from litetool.tui.timeline_tables import PENDING, POINT_COLUMNS, RestorePointTable
from litetool.tui.zoom import WHOLE
from litetool.wording import plural


class RestorePointBrowser(Vertical):
    """Browse the restore points of one generation and pick one (``picked_point``)."""

    WINDOW_ROWS = 1000
    DETAILS_DELAY_SECONDS = 0.1  # fetch for the rows on screen once scrolling pauses this long

    DEFAULT_CSS = """
    RestorePointBrowser #points { height: 1fr; }
    RestorePointBrowser #picked {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: RestorePoints | None = None
        self.window: tuple[int, int] | None = None
        self.picked_txid: int | None = None
        self.zoom = WHOLE
        self.follow = True  # the picked point is the latest: the next refresh follows it
        self._replica: Replica | None = None  # where the shown generation's segments are
        self._details = DetailRequests()  # of the shown generation
        self._details_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("Commits over time", classes="section", id="histogram-title")
        yield CommitHistogram(id="histogram")
        yield Label("Restore points", classes="section")
        yield RestorePointTable(id="points", cursor_type="row", zebra_stripes=True)
        yield Static("", id="picked")
        yield GotoBar(id="goto")

    def on_mount(self) -> None:
        self._show_zoom()

    def set_compact(self, compact: bool) -> None:
        """The full or compact columns; redraw the table when they change."""
        points = self.query_one("#points", RestorePointTable)
        points.compact = compact
        if set_layout(points, POINT_COLUMNS, compact) and self.points is not None:
            self.window = None
            if self.picked_txid is not None:
                self.pick(self.picked_txid)

    def status(self) -> tuple[str, bool] | None:
        """The status line for the shown generation (None if there is none): its range,
        what is being fetched, and the last failure to fetch a segment; and whether
        that failure is there (an error)."""
        points = self.points
        if points is None:
            return None
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
        return text, details.error is not None

    # -- showing a generation --------------------------------------------------------------

    def show(self, points: RestorePoints | None, replica: Replica | None = None) -> None:
        """Show *points* (None: no generation), whose segments *replica* holds."""
        self.workers.cancel_group(self, "details")
        self._details.clear()
        self.points = points
        self._replica = replica
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
        if self.follow:
            keep = points.last_txid
        self.pick(keep)
        self.refresh_bindings()

    def update(self, points: RestorePoints) -> None:
        """The shown generation, loaded again (a refresh): keep what was fetched, add
        the new points to the table, keep the cursor (or follow the latest point)."""
        old = self.points
        assert old is not None
        if points.same_as(old):
            return  # nothing new: keep the one with its details
        if points.first_txid != old.first_txid:
            self.show(points, self._replica)
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
            elif not self.follow:
                pass  # the window slides to the new points when the cursor gets there
            else:
                self.window = None  # refilled around the latest point below
        if self.follow:
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
        self.follow = txid == points.last_txid
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
        points, replica = self.points, self._replica
        if points is None or replica is None:
            return
        new = self._details.start(entries, retry=retry)
        if not new:
            return
        self.fetch_details(replica, points.generation, new)
        self.post_message(PointsStatusChanged())

    @work(group="details", exit_on_error=False)
    async def fetch_details(
        self, replica: Replica, generation: str, entries: list[SegmentEntry]
    ) -> None:
        """Fetch the segments *entries* for their per-transaction detail and report
        what arrived and what failed."""
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
                replica.name, generation, details, [entry for entry, _ in failures], error
            )
        )

    @on(DetailsLoaded)
    def _details_loaded(self, message: DetailsLoaded) -> None:
        points, replica = self.points, self._replica
        if (
            replica is None
            or message.replica_name != replica.name
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
        self.post_message(PointsStatusChanged())

    @on(RestorePointTable.ViewportMoved)
    def _viewport_moved(self) -> None:
        self._schedule_details()

    @on(DataTable.RowHighlighted, "#points")
    def _point_highlighted(self, event: DataTable.RowHighlighted) -> None:
        points, window = self.points, self.window
        if points is None or window is None or event.row_key.value is None:
            return
        if cursor_key(event.data_table) != event.row_key.value:
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
            self.follow = txid == points.last_txid
            self._show_histogram()
            self._show_picked()
            self._schedule_details()

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

    # -- time slices and zoom --------------------------------------------------------------

    def step_bucket(self, direction: int) -> None:
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

    def zoom_by(self, direction: int) -> None:
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

    # -- go to a txid or a time ------------------------------------------------------------

    def open_goto(self) -> None:
        self.query_one("#goto", GotoBar).open()

    @on(GotoResolved)
    def _goto_resolved(self, message: GotoResolved) -> None:
        if self.points is None or message.generation != self.points.generation:
            return  # read against a generation no longer shown
        self._close_goto()
        self._details.goto_time_us = None  # supersedes one still waiting for a segment
        self.pick(message.txid)
        self.post_message(PointsStatusChanged())

    @on(GotoNeedsSegment)
    def _goto_needs_segment(self, message: GotoNeedsSegment) -> None:
        if self.points is None or message.generation != self.points.generation:
            return  # read against a generation no longer shown
        # Fetch it (again if it failed before: this is asking again), then go there
        # once it has arrived (_details_loaded).
        self._close_goto()
        self._details.goto_time_us = message.time_us
        self._fetch([message.entry], retry=True)
        self.post_message(PointsStatusChanged())

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

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.query_one("#goto", GotoBar).has_focus:
            event.stop()
            self._close_goto()
