"""The live database's replicated point while no daemon runs (for ``verify``).

Takes the spool lock (so no daemon can start meanwhile), recovers the spool's
capture position, and if the live database is provably still exactly at that
point (``litetool.engine.continuity.continuity``: nothing committed since, nothing
changed), returns the digest of its image there. The seal is only read;
the page digests may move forward to the spooled position.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

from litetool.engine.capture.capture import Capture
from litetool.engine.capture.fence import ReadFence
from litetool.engine.continuity.continuity import read_seal
from litetool.engine.continuity.page_digests import PageDigests
from litetool.engine.spool.spool import Spool
from litetool.engine.validation import source_digest
from litetool.wording import plural


@dataclass(frozen=True, slots=True)
class LivePoint:
    generation: str | None
    txid: int | None
    digest: str | None
    reason: str | None  # why there is no comparable point


def live_point(database_config) -> LivePoint:
    spool_dir = database_config.resolved_spool_dir()
    if not (spool_dir / "state.json").exists():
        return LivePoint(None, None, None, "litetool has never replicated this database")
    lock_fd = os.open(spool_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return LivePoint(
                None,
                None,
                None,
                "a litetool daemon is replicating it (set metrics.addr so verify can ask it)",
            )
        spool = Spool(spool_dir, max_bytes=database_config.spool_max_bytes)
        state = spool.open()
        if state is None:
            spool.close()
            return LivePoint(None, None, None, "the spool holds no generation yet")
        fence = ReadFence(database_config.path)
        fence.open()
        try:
            capture = Capture(database_config.path, spool, fence)
            capture.restore_state(state, spool.last)
            digests, missing = PageDigests.open(spool_dir)
            try:
                verdict = capture.prove_continuity(read_seal(spool_dir), digests, missing)
            finally:
                if digests is not None:
                    digests.close()
            if not verdict.resume:
                return LivePoint(None, None, None, f"not comparable: {verdict.reason}")
            pending = verdict.wal.new_transactions
            if pending:
                return LivePoint(
                    capture.generation,
                    capture.txid,
                    None,
                    f"the live database has {plural(pending, 'transaction')} not replicated yet",
                )
            with capture.open_snapshot() as source:
                if source.txid != capture.txid:
                    return LivePoint(None, None, None, "the database changed during verify")
                digest = source_digest(source)
            return LivePoint(capture.generation, capture.txid, digest, None)
        finally:
            fence.close()
            spool.close()
    finally:
        os.close(lock_fd)
