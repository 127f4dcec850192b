"""A restore that meets a broken object, or a full disk.

- A corrupt chunk of the snapshot the planner chose no longer fails the
  restore when an older snapshot plus segments reach the same point: it falls
  back to the next cheapest plan without the broken object and says so on
  stderr (which object, which plan instead). When no plan reaches the point,
  it fails naming the object, with a hint naming the latest restore point
  that still works, which does restore.
- A file system that fills up while the restore writes gives one line ("no
  space left on device writing OUT.tmp") and exit 1, not an internal error,
  and nothing is left behind; a database that cannot fit is refused before
  anything is written. The file system is a real tmpfs of a few hundred KiB,
  mounted in a private mount namespace (``unshare``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hostile_replicas import (
    PAGE_SIZE,
    REPO,
    base_replica,
    content,
    image_content,
    manifest_chunks,
    record_json,
    snapshot_of,
)

from litetool.cli import main
from litetool.storage import object_key


def restore(capsys, url: str, out: Path, *argv: str) -> tuple[int, str]:
    code = main(["restore", url, "-o", str(out), *argv])
    return code, capsys.readouterr().err


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture
def two_snapshots(tmp_path):
    """Txid 0 (snapshot), txid 1 (a segment) and a snapshot of txid 1 that the planner
    prefers (its index entry says it costs almost nothing)."""
    crafted = base_replica(tmp_path / "replica")
    later = snapshot_of(crafted.root, crafted.after, 1)
    later["bytes"] = 1
    crafted.write_record(2, record_json(crafted.generation, 2, snapshots=[later]))
    return crafted, later["manifest"], manifest_chunks(crafted.root, later["manifest"])


def test_a_corrupt_chunk_of_the_chosen_snapshot_falls_back_to_an_older_one(
    two_snapshots, tmp_path, capsys
):
    crafted, _, chunks = two_snapshots
    unique = [chunk for chunk in chunks if chunk not in crafted.chunks]
    assert unique  # the premise: txid 1 changed pages that the snapshot of txid 0 has not
    flip(crafted.root / object_key(unique[0]))
    out = tmp_path / "restored.db"
    code, err = restore(capsys, crafted.url, out)
    assert code == 0, err
    (line,) = err.strip().splitlines()
    assert line == (
        f"warning: corrupt object {object_key(unique[0])}: content does not match its name "
        f"(BLAKE3 digest differs); restoring txid 1 of generation {crafted.generation}: "
        "the snapshot at txid 0 and 1 segment instead"
    )
    assert content(out) == image_content(crafted.after, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["replica", "replica-source.db", "restored.db"]


def test_when_no_plan_avoids_the_broken_objects_the_hint_names_a_point_that_works(
    two_snapshots, tmp_path, capsys
):
    crafted, _, chunks = two_snapshots
    unique = [chunk for chunk in chunks if chunk not in crafted.chunks]
    flip(crafted.root / object_key(unique[0]))
    (crafted.root / object_key(crafted.segment)).unlink()
    out = tmp_path / "restored.db"
    code, err = restore(capsys, crafted.url, out)
    assert code == 1, err
    warning, error = err.strip().splitlines()
    assert warning.startswith(f"warning: corrupt object {object_key(unique[0])}: ")
    assert error.startswith(f"error: object not found: {object_key(crafted.segment)} (hint: ")
    assert error.endswith(
        f"the latest restore point that avoids every broken object found is txid 0 of generation "
        f"{crafted.generation} (committed 2025-11-25T03:06:40.000000Z): "
        f"use --txid 0 --generation {crafted.generation})"
    )
    assert not out.exists() and not Path(f"{out}.tmp").exists()
    code, err = restore(capsys, crafted.url, out, "--txid", "0", "--generation", crafted.generation)
    assert code == 0, err
    assert content(out) == image_content(crafted.before, tmp_path)


def test_a_chunk_shared_by_every_snapshot_leaves_nothing_to_fall_back_on(
    two_snapshots, tmp_path, capsys
):
    """Snapshots share unchanged chunks: the older snapshot's manifest is read before it
    is chosen, and it names the broken chunk too."""
    crafted, _, chunks = two_snapshots
    shared = [chunk for chunk in chunks if chunk in crafted.chunks]
    assert shared
    flip(crafted.root / object_key(shared[0]))
    out = tmp_path / "restored.db"
    code, err = restore(capsys, crafted.url, out)
    assert code == 1, err
    (error,) = err.strip().splitlines()
    assert error.startswith(f"error: corrupt object {object_key(shared[0])}: content does not")
    assert error.endswith("(hint: no earlier restore point avoids it)")
    assert sorted(os.listdir(tmp_path)) == ["replica", "replica-source.db"]


# -- a full disk -----------------------------------------------------------------------------

# Runs inside a private mount namespace with a small tmpfs at argv[1]; restores into it.
# With "fill", the file system is filled up once the restore's temp file exists (another
# process writing the same disk), so the restore meets ENOSPC in the middle of its writes.
IN_NAMESPACE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    mount, url, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if mode == "fill":
        from litetool.restore import output
        original = output.RestoreOutput.open
        def open_then_fill(self):
            original(self)
            fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, bytes(4096)):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
        output.RestoreOutput.open = open_then_fill
    from litetool.cli import main
    code = main(["restore", url, "-o", str(mount / "restored.db")])
    left = sorted(str(p.relative_to(mount)) for p in mount.rglob("*"))
    print("LEFT", left, file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)
    """
)


def _in_small_tmpfs(mount: Path, size_kib: int, url: str, mode: str):
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {mount}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    script = (
        f"mount -t tmpfs -o size={size_kib}k tmpfs {mount} && "
        f'exec "$0" -c "$1" {mount} {url} {mode}'
    )
    return subprocess.run(
        [unshare, "-rm", "sh", "-c", script, sys.executable, IN_NAMESPACE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _left(stderr: str) -> str:
    found = re.search(r"^LEFT (.*)$", stderr, re.MULTILINE)
    assert found, stderr
    return found.group(1)


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("LEFT ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return lines[0]


def test_no_space_left_while_writing_is_one_line_and_leaves_nothing(tmp_path):
    crafted = base_replica(tmp_path / "replica")
    mount = tmp_path / "small"
    mount.mkdir()
    finished = _in_small_tmpfs(mount, 512, crafted.url, "fill")
    assert finished.returncode == 1, finished.stderr
    line = _error_line(finished.stderr)
    assert line.startswith(f"error: no space left on device writing {mount}/restored.db.tmp")
    size = len(crafted.after) / 1024
    assert f"(hint: the restored database needs {size:.1f} KiB; free some space" in line
    assert _left(finished.stderr) == "['filler']"


def test_a_database_larger_than_the_free_space_is_refused_before_writing(tmp_path):
    crafted = base_replica(tmp_path / "replica")
    mount = tmp_path / "small"
    mount.mkdir()
    finished = _in_small_tmpfs(mount, 16, crafted.url, "plain")
    assert finished.returncode == 1, finished.stderr
    line = _error_line(finished.stderr)
    pages = len(crafted.after) // PAGE_SIZE
    assert re.match(
        rf"error: the database at txid 1 is {pages * PAGE_SIZE / 1024:.1f} KiB \({pages} pages "
        rf"of {PAGE_SIZE} bytes, as {re.escape(object_key(crafted.segment))} says\) and "
        rf"{mount} has \d+\.\d KiB free",
        line,
    ), line
    assert _left(finished.stderr) == "[]"
