"""The spool cap: trimming, backpressure, and detaching a replica at the cap.

The capture thread checks after captures and status refreshes: the spool is
trimmed to what some replica, a snapshot in flight or the page digests still
need; while the replica furthest behind is reachable but slower than the
application, the application is braked before the cap (backpressure,
``litetool.engine.capture.brake``); at the cap the page digests give way first, then
the snapshots in flight, then the replica holding the oldest history is
detached and starts over from a new snapshot when reachable (see "Spool cap
and outages" in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from litetool.engine.capture.brake import BACKPRESSURE_ON_SHARE
from litetool.engine.capture.capture_side import CaptureSide
from litetool.engine.runtime.status import publish_and_log
from litetool.engine.snapshot_serving import SnapshotServing
from litetool.engine.sync.replica_progress import ReplicaProgress
from litetool.engine.sync.replica_sync import ReplicaSync


class SpoolCap:
    """Keeps one database's spool under its cap."""

    def __init__(self, side: CaptureSide, snapshots: SnapshotServing) -> None:
        self.side = side
        self.snapshots = snapshots

    def check_if_near(self) -> None:
        """After a capture: check at once when the spool nears its cap."""
        spool = self.side.spool
        if spool.size_bytes >= spool.max_bytes * BACKPRESSURE_ON_SHARE:
            # At once: the cap is a promise, and backpressure must begin
            # before it (a burst fills the spool between two status refreshes).
            self.check()

    def check(self) -> None:
        side, spool = self.side, self.side.spool
        txid = side.capture.txid
        # Replicas without an established position (never reached, detached,
        # waiting for a snapshot) start from a snapshot: they hold no history.
        # Each replica's progress is read once: its loop replaces it meanwhile.
        holders = [(r, progress) for r in side.replicas if (progress := r.progress).has_place]
        # Trim first: the cap is about what some replica still needs, not
        # about what was published since the last trim (checking first once
        # detached a replica that had caught up, after a burst).
        pins = self.snapshots.pinned()
        floor = [progress.txid for _, progress in holders] + pins
        digests_floor = side.keeper.floor(side.generation)
        keep = floor + digests_floor
        spool.trim(min(keep) if keep else txid)
        self._update_backpressure(holders)
        if not spool.over_cap:
            return
        if digests_floor and (not floor or min(digests_floor) < min(floor)):
            # The page digests give way first: they are rebuilt from the live
            # database, a replica's history is not.
            side.log(
                "warning",
                "page digests dropped",
                reason="the spool reached its cap",
                action="rebuilt from the database; until then an unclean stop starts a new "
                "generation",
            )
            side.keeper.drop()
            spool.trim(min(floor) if floor else txid)
            if not spool.over_cap:
                return
        # The cap comes first: the snapshots in flight lose their place,
        # and their replicas start over from another one (loudly, below).
        pins = self.snapshots.unpin_all()
        if pins:
            side.log(
                "error",
                "spool full",
                spool_bytes=spool.size_bytes,
                cap=spool.max_bytes,
                action="snapshots being uploaded lose their place in the spool; "
                "their replicas start from another snapshot",
            )
        if not holders:
            spool.trim(txid)
            return
        # Over the cap: detach the replica that holds the oldest history.
        laggard, _ = min(holders, key=lambda holder: holder[1].txid)
        publish_and_log(
            side.board,
            side.log,
            "error",
            "spool full",
            str(side.db_path),
            f"spool full: replica {laggard.name} detached",
            spool_bytes=spool.size_bytes,
            cap=spool.max_bytes,
            replica=laggard.name,
            action="replica detached; it restarts from a new snapshot when reachable",
        )
        laggard.detach()
        rest = [progress.txid for r, progress in holders if r is not laggard]
        spool.trim(min(rest) if rest else txid)
        side.board.update_database(str(side.db_path), spool_over_cap=spool.over_cap)

    def _update_backpressure(self, holders: list[tuple[ReplicaSync, ReplicaProgress]]) -> None:
        """Brake the application while the replica furthest behind is reachable
        but slower than it, before the spool reaches its cap.

        A replica that keeps up with its syncs yet falls behind (the disk or
        the network is the limit, e.g. a full-speed burst on a saturated disk)
        would otherwise be detached at the cap and start over from a snapshot,
        which costs more of what is short. A replica that fails (an outage)
        never brakes the application: the cap and detaching are for that.
        """
        side, spool, brake = self.side, self.side.spool, self.side.brake
        share = spool.size_bytes / max(1, spool.max_bytes)
        laggard, progress = min(holders, key=lambda holder: holder[1].txid, default=(None, None))
        reachable = progress is not None and progress.reachable
        if not brake.update_backpressure(share, reachable):
            return
        on = brake.backpressure
        side.board.update_database(
            str(side.db_path), backpressure=on, braked_seconds_total=brake.braked_seconds
        )
        if on:
            assert laggard is not None
            publish_and_log(
                side.board,
                side.log,
                "warning",
                "backpressure",
                str(side.db_path),
                f"replica {laggard.name} is behind: braking the application's writers",
                replica=laggard.name,
                spool_bytes=spool.size_bytes,
                cap=spool.max_bytes,
                action="writers are held in short pulses until the replica catches up",
            )
        else:
            side.log(
                "info",
                "backpressure off",
                spool_bytes=spool.size_bytes,
                braked_seconds_total=round(brake.braked_seconds, 3),
            )
