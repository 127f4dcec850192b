"""When each commit became visible: the wal-index's ``mxFrame``, watched.

The capture loop (``litetool.engine.capture_thread``) looks about every
millisecond between captures while commits come in; each capture then gives
every run of transactions the time its last commit was first seen
(``CommitClock.time_runs``), which the spool record keeps.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from litetool.engine.spool.spool_codec import WalPosition
from litetool.wal.header import raw_salts, salts_of
from litetool.wal.shm import WAL_INDEX_READ_SIZE, parse_wal_index


class CommitClock:
    """When each commit became visible: the wal-index's ``mxFrame``, watched.

    SQLite publishes a commit by writing the wal-index header in ``-shm``
    (``mxFrame``: the last committed frame), a moment before COMMIT returns
    in the application. ``observe`` reads that header (two 48-byte copies,
    one ``pread``) and notes the time whenever ``mxFrame`` moved; the
    capture loop calls it about every millisecond between captures while
    commits come in. Captures then stamp each run of transactions with the
    time its last commit was first seen (``cut_after``), not with the
    capture's own time, so a transaction's time is late by about the
    observation interval whatever the capture spacing.
    """

    MAX_OBSERVATIONS = 4096

    def __init__(self) -> None:
        # (salts as raw bytes, WAL offset just past the last commit, time in us)
        self._seen: list[tuple[bytes, int, int]] = []
        self._last: tuple[bytes, int] = (b"", -1)

    def observe(self, shm_fd: int, page_size: int, now_us: Callable[[], int]) -> bool:
        """Read the wal-index header; True if a new commit became visible.

        The clock is read only after the header showed the commit, never
        before: a time taken before the read could precede a commit that
        landed in between (the thread may be descheduled there for
        milliseconds), and would then come before the transaction began."""
        if shm_fd < 0 or not page_size:
            return False
        index = parse_wal_index(os.pread(shm_fd, WAL_INDEX_READ_SIZE, 0))
        if index is None or not index.initialized:
            return False  # being written or rebuilt: the next look sees it whole
        mark = (index.salts, index.mx_frame)
        if mark == self._last:
            return False
        self._last = mark
        end = index.end_offset(page_size)
        if len(self._seen) >= self.MAX_OBSERVATIONS:
            del self._seen[: self.MAX_OBSERVATIONS // 2]
        self._seen.append((mark[0], end, now_us()))
        return True

    def cut_after(self, salts: bytes, offset: int) -> tuple[int, int] | None:
        """The first observed commit end after ``offset`` in the WAL with
        ``salts``, and when it was seen; None if none was observed."""
        for seen_salts, end, time_us in self._seen:
            if seen_salts == salts and end > offset:
                return end, time_us
        return None

    def ends_within(self, salts: bytes, start: int, end: int) -> list[tuple[int, int]]:
        """Observed commit ends in (start, end] of the WAL with ``salts``, in order."""
        return [(e, t) for s, e, t in self._seen if s == salts and start < e <= end]

    def forget_through(self, salts: bytes, offset: int) -> None:
        """Drop what was observed up to ``offset`` (captured), and of other WALs."""
        seen = self._seen
        if seen and (seen[0][0] != salts or seen[0][1] <= offset):
            self._seen = [s for s in seen if s[0] == salts and s[1] > offset]

    def time_runs(
        self,
        frames: memoryview,
        offset: int,
        count: int,
        *,
        position: WalPosition,
        page_size: int,
        txid: int,
        last_time_us: int,
    ) -> tuple[tuple[tuple[int, int], ...], int]:
        """Commit-time runs for ``count`` transactions in ``frames`` (read at WAL
        ``offset``, just past ``position``, the captured txid ``txid`` stamped
        ``last_time_us``), and the time of the last one (0: not seen yet, use now).

        The observed commit ends inside the frames split them into runs: the
        transactions up to each end were first seen at its time. Only for
        frames the wal-index announced: elsewhere there is nothing to go by.
        """
        from litetool.wal.reader import scan_commits

        salts = raw_salts(position.header)
        end = offset + len(frames)
        runs: list[tuple[int, int]] = []
        done = 0  # transactions placed in runs so far
        at = offset
        checksum = tuple(position.checksum)
        last_time = last_time_us
        for cut_end, seen_us in self.ends_within(salts, offset, end):
            piece = frames[at - offset : cut_end - offset]
            scan = scan_commits(
                piece, page_size=page_size, salts=salts_of(salts), checksum_state=checksum
            )
            if scan is None or scan.end_offset != len(piece) or scan.transaction_count == 0:
                break  # not a commit boundary of these frames: stop splitting
            done += scan.transaction_count
            checksum = scan.checksum_state
            at = cut_end
            last_time = max(last_time, seen_us)
            if done < count:
                runs.append((txid + done, last_time))
            else:
                return tuple(runs), last_time
        seen = self.cut_after(salts, end - 1)
        return tuple(runs), (max(last_time, seen[1]) if seen is not None else 0)
