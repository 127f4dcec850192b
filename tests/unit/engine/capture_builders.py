"""Builders for the unit tests of WAL capture, snapshot publishing and
validation (imported as ``capture_builders``; this directory is on sys.path):
an application that keeps its connection (and an open transaction) in another
process, WAL frames read by hand, a database rebuilt from spooled frames, a
restore of a replica into a file, and the digest validation compares, computed
without litetool."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import blake3

from litetool.engine.spool.spool import Spool
from litetool.wal.header import WAL_HEADER_SIZE

FRAME_HEADER = 24

SESSION = textwrap.dedent(
    """
    import json, sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
    db.execute("PRAGMA wal_autocheckpoint=0")
    print(json.dumps("started"), flush=True)
    for line in sys.stdin:
        try:
            out = [db.execute(sql).fetchall() for sql in json.loads(line)]
        except sqlite3.Error as exc:
            out = {"error": str(exc)}
        print(json.dumps(out), flush=True)
    """
)


class Application:
    """The application in another process: one connection, kept open (no
    automatic checkpoint), running the statements it is given in order; a
    transaction it begins stays open until it is told to commit."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SESSION, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._line()) == "started"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the application process ended"
        return line

    def run(self, *statements: str) -> list[list[list]]:
        """Run *statements*; the rows each returned."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(statements) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self._line())
        assert not isinstance(out, dict), out["error"]
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@dataclass(frozen=True)
class Frame:
    """One WAL frame as its bytes say (big-endian header fields)."""

    page: int
    commit_size: int  # the database size in pages after a commit frame, else 0
    salts: bytes
    data: bytes


def frames_of(data: bytes, page_size: int) -> list[Frame]:
    """Every whole frame in *data* (WAL frames back to back), read by hand."""
    stride = FRAME_HEADER + page_size
    assert len(data) % stride == 0, "not whole frames"
    out = []
    for at in range(0, len(data), stride):
        page, commit_size = struct.unpack_from(">II", data, at)
        salts = data[at + 8 : at + 16]
        out.append(Frame(page, commit_size, salts, data[at + FRAME_HEADER : at + stride]))
    return out


def wal_committed_end(wal: Path, page_size: int) -> tuple[int, int]:
    """(offset just past the last commit frame, database size it committed) of
    the WAL's current cycle: frames carrying the header's salts, read by hand
    from the first frame on (no checksums: call where only SQLite wrote)."""
    data = wal.read_bytes()
    salts = data[16:24]
    stride = FRAME_HEADER + page_size
    end, size = WAL_HEADER_SIZE, 0
    for at in range(WAL_HEADER_SIZE, len(data) - stride + 1, stride):
        if data[at + 8 : at + 16] != salts:
            break
        commit_size = struct.unpack_from(">I", data, at + 4)[0]
        if commit_size:
            end, size = at + stride, commit_size
    return end, size


def records_of(spool: Spool) -> list:
    """Every record the spool serves (without frames), in order."""
    located = spool.locate_after(-1, max_bytes=1 << 40)
    try:
        return list(located.records)
    finally:
        located.close()


def rebuild(base: bytes, frames: list[Frame], page_size: int) -> bytes:
    """The database image *base* with *frames* applied in order, cut to the
    size the last commit frame gives."""
    image = bytearray(base)
    size = len(base) // page_size
    for frame in frames:
        end = frame.page * page_size
        if len(image) < end:
            image.extend(bytes(end - len(image)))
        image[end - page_size : end] = frame.data
        if frame.commit_size:
            size = frame.commit_size
    return bytes(image[: size * page_size])


def normalized_digest(image: bytes) -> str:
    """BLAKE3 of a database image with its journal-mode bytes (18 and 19 of the
    header) set to rollback-journal mode, as a restore writes them."""
    data = bytearray(image)
    data[18:20] = b"\x01\x01"
    return blake3.blake3(bytes(data)).hexdigest()


async def restore_to(replica, generation: str, txid: int, out: Path) -> Path:
    """Restore (generation, txid) of *replica* into the file *out*."""
    from litetool.restore import RestoreTarget, execute_plan, plan_fetching

    index = await replica.index.load_generation(generation)
    plan, _ = await plan_fetching(
        [(replica.name, index)], RestoreTarget(txid=txid, generation=generation), [replica]
    )
    await execute_plan(plan, replica, out)
    return out


def object_path(replica_dir: Path, digest: str) -> Path:
    """Where a file replica keeps the object *digest*."""
    return replica_dir / "objects" / digest[:2] / digest


def flip_byte(path: Path, at: int) -> None:
    """Damage one byte of *path* in place."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def wal_size(db: Path) -> int:
    return os.path.getsize(f"{db}-wal")
