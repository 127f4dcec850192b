"""Validation: does a replica restore to exactly the live database?

Both sides are taken at the *same* txid, so there are no false alarms (the
reason Litestream's validation was removed): the live image comes from a
snapshot source opened by the capture thread at txid T (a consistent image,
see ``litetool.engine.capture.snapshot``); the replica side is a real restore of
txid T into a temporary directory (which also runs ``integrity_check``).
The two images are compared by BLAKE3 over their pages, with the header's
journal-mode bytes normalized (a restore writes rollback-journal mode).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from litetool.errors import LitetoolError

_JOURNAL_MODE_BYTES = slice(18, 20)
_DIGEST_CHUNK = 4 << 20
PUBLISH_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ValidationResult:
    database: str
    replica: str
    generation: str | None
    txid: int | None
    ok: bool
    message: str
    live_digest: str | None = None
    restored_digest: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "database": self.database,
            "replica": self.replica,
            "generation": self.generation,
            "txid": self.txid,
            "ok": self.ok,
            "message": self.message,
            "live_digest": self.live_digest,
            "restored_digest": self.restored_digest,
            "seconds": round(self.seconds, 3),
        }


class _Digest:
    """BLAKE3 over a database image, journal-mode bytes normalized."""

    def __init__(self) -> None:
        import blake3

        self._hash = blake3.blake3()
        self._first = True

    def update(self, data: bytes) -> None:
        if self._first and len(data) >= 20:
            data = bytearray(data)
            data[_JOURNAL_MODE_BYTES] = b"\x01\x01"
        self._first = False
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def source_digest(source) -> str:
    """Digest of a SnapshotSource's image."""
    digest = _Digest()
    for index in range(source.chunk_count(_DIGEST_CHUNK)):
        digest.update(source.read_chunk(index, _DIGEST_CHUNK))
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """Digest of a database file (a restored one: no WAL to overlay)."""
    digest = _Digest()
    with open(path, "rb") as handle:
        while chunk := handle.read(_DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def restored_digest(replica, generation: str, txid: int) -> str:
    """Restore (generation, txid) from ``replica`` into a temp dir; its digest."""
    from litetool.restore import RestoreTarget, execute_plan, plan_fetching

    index = await replica.index.load_generation(generation)
    plan, _ = await plan_fetching(
        [(replica.name, index)], RestoreTarget(txid=txid, generation=generation), [replica]
    )
    with tempfile.TemporaryDirectory(prefix="litetool-verify-") as directory:
        path = Path(directory) / "verify.db"
        await execute_plan(plan, replica, path)
        return await asyncio.to_thread(file_digest, path)


async def validate_replica(replication, sync) -> ValidationResult:
    """Compare one replica with the live database at the current txid."""
    started = time.perf_counter()
    database = str(replication.db_path)

    def result(ok: bool, message: str, **fields) -> ValidationResult:
        return ValidationResult(
            database,
            sync.name,
            fields.pop("generation", None),
            fields.pop("txid", None),
            ok,
            message,
            seconds=time.perf_counter() - started,
            **fields,
        )

    if not sync.progress.has_place:
        return result(False, "the replica has no current generation yet")
    source = await replication.take_snapshot()
    try:
        txid = source.txid
        live = await asyncio.to_thread(source_digest, source)
    finally:
        await asyncio.to_thread(source.close)
        replication.release_snapshot(source)
    deadline = time.monotonic() + PUBLISH_WAIT_SECONDS
    while sync.progress.txid < txid:
        sync.wake.set()
        if time.monotonic() > deadline:
            return result(
                False,
                f"the replica did not reach txid {txid} within {PUBLISH_WAIT_SECONDS:.0f}s",
                txid=txid,
            )
        await asyncio.sleep(0.05)
    generation = sync.progress.generation
    assert generation is not None
    try:
        restored = await restored_digest(sync.replica, generation, txid)
    except LitetoolError as exc:
        return result(False, f"restore failed: {exc.message}", generation=generation, txid=txid)
    if restored != live:
        return result(
            False,
            f"MISMATCH: the restore of txid {txid} differs from the live database",
            generation=generation,
            txid=txid,
            live_digest=live,
            restored_digest=restored,
        )
    return result(
        True,
        f"txid {txid} restores to exactly the live database",
        generation=generation,
        txid=txid,
        live_digest=live,
        restored_digest=restored,
    )
