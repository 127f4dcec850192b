"""litetool's own checkpoints: background backfill steps, controlled checkpoints
(WAL restarts) in rounds, and the policy that decides when one starts.

``Checkpointer`` works for one ``Capture`` (a replaced database file gets a
new pair): its background thread moves the read fence and runs SQLite's
PASSIVE checkpoints, and a controlled checkpoint takes rounds of those
without the write lock before its last step under it (see "Never losing a
frame" in docs/ARCHITECTURE.md). ``CheckpointPolicy`` is the capture loop's
side: the soft and hard thresholds, the interval, and what a checkpoint
leaves on the status board and in the log.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable
from pathlib import Path

from litetool.crashpoints import crash_point
from litetool.engine.capture.capture import Capture
from litetool.engine.capture.fence import CheckpointResult
from litetool.engine.runtime.memory import lower_thread_priority
from litetool.engine.runtime.status import EventKind, StatusBoard, publish_and_log
from litetool.wal.header import WAL_HEADER_SIZE, frame_size, frames_between
from litetool.wording import plural

# Controlled checkpoints backfill without the write lock first, in up to this
# many rounds, until at most LOCKED_TAIL_FRAMES are left for under the lock.
UNLOCKED_CHECKPOINT_ROUNDS = 6
# Between them, the fence moves and SQLite backfills every this many frames
# (SQLite's own automatic checkpoint cadence).
BACKFILL_STEP_FRAMES = 1000
LOCKED_TAIL_FRAMES = 2048
# Soft checkpoints (WAL restarts) at most this often while the application
# writes: each holds writers for a few fsyncs (see ``Checkpointer.checkpoint_step``;
# the backfill itself goes on in the background), so a full-speed writer
# meets about one a second; the hard threshold still applies at once.
MIN_CHECKPOINT_SPACING_SECONDS = 1.0


class Checkpointer:
    """Backfill steps and controlled checkpoints of one capture's database."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.fence = capture.fence
        self.spool = capture.spool
        # (WAL header, offset) up to which litetool's last complete checkpoint went.
        self._checkpointed: tuple[bytes, int] | None = None
        # The unlocked part of a controlled checkpoint runs in its own thread.
        self._backfill_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._backfill: concurrent.futures.Future[CheckpointResult] | None = None
        self._checkpointing = False  # a checkpoint_step sequence is under way
        self._rounds = 0
        self._left = -1  # frames the last round left for the lock
        # The rounds of the checkpoint under way do not converge: the capture
        # loop holds the application's writers in short pulses until it is done.
        self.braking = False
        # Where the fence was last moved to (about: the WAL may have been longer).
        self._fence_header = b""
        self._fence_offset = 0

    @property
    def checkpoint_in_progress(self) -> bool:
        return self._checkpointing

    def backfill_step(self, on_backfilled: Callable[[], None] | None = None) -> None:
        """Keep SQLite's backfill going in the background, a step at a time.

        Once ``BACKFILL_STEP_FRAMES`` frames lie beyond the fence, a background
        thread moves the fence to the end of the WAL and at once runs a
        PASSIVE checkpoint up to it. Small steps matter: the application's
        automatic checkpoint (after each of its commits, once the WAL holds
        1000 frames) may get to the backfill first, and then it pays for it
        inside a commit, so a step never gives it more than SQLite's own
        cadence would. Restarting the WAL is ``checkpoint_step``'s job.
        """
        if self._checkpointing:
            return
        if self._backfill is not None:
            if not self._backfill.done():
                return
            future, self._backfill = self._backfill, None
            future.result()  # raises what the step raised
        position, page_size = self.capture.position, self.capture.page_size
        if position is None or not page_size:
            return
        fence = self._fence_offset if self._fence_header == position.header else 0
        beyond = frames_between(max(fence, WAL_HEADER_SIZE), position.offset, page_size)
        if beyond >= BACKFILL_STEP_FRAMES:
            self._submit_backfill(on_backfilled)

    def checkpoint_step(
        self, *, truncate: bool, on_backfilled: Callable[[], None] | None = None
    ) -> CheckpointResult | None:
        """Advance a controlled checkpoint (a WAL restart) without waiting for its slow part.

        The first call captures to the end of the WAL and starts a backfill
        round (``_submit_backfill``) in the background thread, so capture,
        and with it commit times, never waits for the copying and fsyncs.
        Later calls return None until the round is done (``on_backfilled``
        runs then, e.g. to wake the capture loop); then either another round
        starts, if the application wrote many frames meanwhile, or the
        checkpoint finishes under the write lock with only the last frames
        left, and its result is returned.
        """
        if not self._checkpointing:
            self._checkpointing = True
            self._rounds = 0
            self._left = -1
        unlocked = None
        if self._backfill is not None:
            if not self._backfill.done():
                return None
            future, self._backfill = self._backfill, None
            unlocked = future.result()
            if self._rounds == 0:
                unlocked = None  # that was a background step: the rounds start now
        if unlocked is None:
            self.capture.capture_tail()
            self._submit_backfill(on_backfilled)
            return None
        # Left for the lock: what the round did not backfill, counted up to
        # where capture stands now (the application wrote on during the
        # round's fsyncs).
        left = (
            max(unlocked.wal_frames, self.capture.captured_frames()) - unlocked.checkpointed_frames
        )
        more_rounds = self._rounds < UNLOCKED_CHECKPOINT_ROUNDS
        if more_rounds and not unlocked.busy and left > LOCKED_TAIL_FRAMES:
            if 0 <= self._left <= left:
                # The application writes faster than the rounds backfill and
                # flush (the disk is the limit): brake it until this
                # checkpoint is done (see ``braking``).
                self.braking = True
            self._left = left
            self.capture.capture_tail()
            self._submit_backfill(on_backfilled)
            return None
        self._checkpointing = False
        self.braking = False
        self._ensure_pool()
        result = self.fence.checkpoint(self._capture_durably, truncate=truncate)
        if result.complete and self.capture.position is not None:
            # Everything captured is in the database file now; the WAL restarts
            # on the next write. Until then nothing is left to checkpoint.
            self._checkpointed = (self.capture.position.header, self.capture.position.offset)
        return result

    def make_way(self) -> bool:
        """Move the fence to the end of the WAL for an application's checkpoint
        that waits for litetool's reader (``ReadFence.others_checkpoint``).

        Only between litetool's own checkpoint steps, right after a capture
        that found nothing new. What was captured is made durable first: once
        the WAL is wholly checkpointed the new reader sits on slot 0 and the
        application may restart (or truncate) the WAL, which litetool then
        follows. A commit that lands in between stays protected: it cannot be
        checkpointed past the old reader's mark, so the new reader stands
        after it (see ``litetool.engine.capture.fence``).
        """
        if self._checkpointing or (self._backfill is not None and not self._backfill.done()):
            return False
        self.spool.sync()
        self.fence.advance()
        if self.capture.position is not None:
            self._fence_header, self._fence_offset = (
                self.capture.position.header,
                self.capture.position.offset,
            )
        return True

    def checkpoint(self, *, truncate: bool) -> CheckpointResult:
        """A whole controlled checkpoint, waiting for each step."""
        while True:
            result = self.checkpoint_step(truncate=truncate)
            if result is not None:
                return result
            assert self._backfill is not None
            concurrent.futures.wait([self._backfill])

    def _submit_backfill(self, on_backfilled: Callable[[], None] | None) -> None:
        """One round in the background thread: move the fence to the end of the
        WAL, PASSIVE checkpoint up to it straight away, then fdatasync the WAL,
        the database and the spool (the locked step syncs all three, writers
        waiting, so that they have little left to write then)."""
        self._ensure_pool()
        assert self._backfill_pool is not None
        self._rounds += 1
        if self.capture.position is not None:
            self._fence_header, self._fence_offset = (
                self.capture.position.header,
                self.capture.position.offset,
            )
        else:
            self._fence_header, self._fence_offset = b"", 0
        wal_fd = self.fence.raw_fd("wal")
        db_fd = self.fence.raw_fd("db")

        def backfill() -> CheckpointResult:
            try:
                self.fence.advance()
                result = self.fence.backfill()
                if wal_fd >= 0:
                    os.fdatasync(wal_fd)
                # SQLite fsyncs the database only after a checkpoint that
                # reaches the end of the WAL, which only the locked step does:
                # without this, that fsync would write every page these rounds
                # copied (tens of MB at full speed) while writers wait.
                if result.checkpointed_frames > 0 and db_fd >= 0:
                    os.fdatasync(db_fd)
                # Last, so that the least is left for the locked step's sync.
                self.spool.sync()
                return result
            finally:
                if on_backfilled is not None:
                    on_backfilled()

        self._backfill = self._backfill_pool.submit(backfill)

    def _ensure_pool(self) -> None:
        if self._backfill_pool is None:
            self._backfill_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"backfill:{self.capture.db_path.name}",
                initializer=lower_thread_priority,
            )

    def _capture_durably(self) -> Callable[[], None]:
        """Under the write lock: capture the last frames and start the spool
        sync, which the fence awaits before it lets go of the lock.

        The WAL may restart after this checkpoint, the only moment SQLite could
        overwrite frames, so the spool must hold them durably first; the sync
        runs alongside SQLite's own backfill and fsyncs to keep writers' wait short.
        """
        self.capture.capture_tail()
        assert self._backfill_pool is not None
        return self._backfill_pool.submit(self.spool.sync).result

    def wal_frames(self) -> int:
        """Captured frames of the current WAL not yet checkpointed by litetool."""
        done, position = self._checkpointed, self.capture.position
        if done is not None and position is not None and done[0] == position.header:
            return self.capture.captured_frames(done[1])
        return self.capture.captured_frames()

    def close(self) -> None:
        """Wait for a backfill in flight (descriptors belong to the fence)."""
        if self._backfill_pool is not None:
            self._backfill_pool.shutdown(wait=True)
            self._backfill_pool = None
        self._backfill = None


class CheckpointPolicy:
    """When the capture loop starts a controlled checkpoint, and what it reports.

    Soft threshold: ``soft_pages`` frames or ``interval`` seconds, at most
    every MIN_CHECKPOINT_SPACING_SECONDS; hard threshold ``hard_pages``: at once.
    """

    def __init__(
        self,
        *,
        soft_pages: int,
        hard_pages: int,
        interval: float,
        board: StatusBoard,
        db_path: Path,
        log: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.soft_pages = soft_pages
        self.hard_pages = hard_pages
        self.interval = interval
        self.board = board
        self.db_path = db_path
        self.log = log
        self.clock = clock
        self._last_checkpoint = clock()
        self._checkpoints: dict[str, int] = {}
        self._truncate = False  # the checkpoint in progress ends with TRUNCATE

    def starts_now(self, frames: int) -> bool:
        """Whether a controlled checkpoint starts with ``frames`` captured frames
        not yet checkpointed (and none in progress)."""
        if frames == 0:
            return False
        now = self.clock()
        hard = frames >= self.hard_pages
        soft = frames >= self.soft_pages
        interval = now - self._last_checkpoint >= self.interval
        if not (hard or soft or interval):
            return False
        if now - self._last_checkpoint < MIN_CHECKPOINT_SPACING_SECONDS and not hard:
            return False
        self._last_checkpoint = now
        return True

    def truncates(self, frames: int, wal_file_bytes: int, page_size: int) -> bool:
        """Whether the checkpoint starting now ends with TRUNCATE."""
        # TRUNCATE only a WAL file larger than the hard threshold that the
        # application no longer fills (a burst or a long reader left it):
        # truncating holds writers, and a busy application writes faster
        # into a file whose blocks are already there.
        hard_bytes = self.hard_pages * frame_size(page_size)
        quiet = frames < self.soft_pages
        return quiet and wal_file_bytes > hard_bytes

    def step(
        self,
        checkpointer: Checkpointer,
        *,
        on_backfilled: Callable[[], None],
        braked_seconds: float,
    ) -> CheckpointResult | None:
        """Start or advance a controlled checkpoint when due; its result once
        it is done (reported on the board and in the log), else None."""
        frames = checkpointer.wal_frames()
        if not checkpointer.checkpoint_in_progress:
            if not self.starts_now(frames):
                return None
            capture = checkpointer.capture
            self._truncate = self.truncates(
                frames, _file_bytes(capture.wal_path), capture.page_size
            )
        result = checkpointer.checkpoint_step(truncate=self._truncate, on_backfilled=on_backfilled)
        if result is None:
            return None
        if result.complete:
            crash_point("checkpoint-done")
        self._report(result, braked_seconds)
        return result

    def _report(self, result: CheckpointResult, braked_seconds: float) -> None:
        db = str(self.db_path)
        self._checkpoints[result.mode] = self._checkpoints.get(result.mode, 0) + 1
        self.board.update_database(
            db,
            checkpoints=dict(self._checkpoints),
            add={
                "checkpoint_seconds_total": result.seconds,
                "writers_held_seconds_total": result.locked_seconds,
            },
        )
        publish_and_log(
            self.board,
            self.log,
            "debug",
            "checkpoint",
            db,
            f"{result.mode} checkpoint of {plural(result.wal_frames, 'frame')}"
            + (" (busy)" if result.busy else ""),
            kind=EventKind.CHECKPOINT,
            shown=("mode", "frames", "seconds"),
            mode=result.mode,
            frames=result.wal_frames,
            checkpointed=result.checkpointed_frames,
            busy=result.busy,
            seconds=round(result.seconds, 4),
            locked_seconds=round(result.locked_seconds, 4),
            braked_seconds_total=round(braked_seconds, 3),
        )


def _file_bytes(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
