"""Faults on a replica written by the engine: every corrupt, truncated, swapped or missing
object is caught with its key; the restore falls back to a plan without it, or fails with
nothing left at OUT and a hint whose restore point works. Interrupted restores (SIGTERM,
SIGINT) leave nothing either."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from restore_history import REPO, check_restored, wait_for

from litetool.cli import main
from litetool.restore import RestoreTarget, load_candidates, plan_point, plan_restore
from litetool.storage import Replica, object_key


def fault_flip(path, other):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def fault_truncate(path, other):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def fault_swap(path, other):
    mine, theirs = path.read_bytes(), other.read_bytes()
    path.write_bytes(theirs)
    other.write_bytes(mine)


def fault_delete(path, other):
    path.unlink()


FAULTS = {
    "flip": (fault_flip, "content does not match its name"),
    "truncate": (fault_truncate, "content does not match its name"),
    "swap": (fault_swap, "content does not match its name"),
    "delete": (fault_delete, "object not found"),
}


@pytest.fixture
def broken_copy(history, tmp_path):
    """A copy of the replica, the plan of a restore with segments, and its objects."""
    copy = tmp_path / "replica"
    shutil.copytree(history.replica_dir, copy)
    candidates = asyncio.run(load_candidates([Replica.open(copy.as_uri(), name="local")]))
    index = history.new
    txid = index.last_txid
    while True:
        plan = plan_restore(candidates, RestoreTarget(txid=txid, generation=index.generation))
        if plan.segments:
            break
        txid -= 1
    return copy, plan


def object_path(replica_dir, digest):
    return replica_dir / object_key(digest)


def restore_argv(copy, out, plan):
    return [
        "restore",
        copy.as_uri(),
        "-o",
        str(out),
        "--txid",
        str(plan.txid),
        "--generation",
        plan.generation,
    ]


def restored_txid(history, out, plan):
    """The content at OUT is exactly what the writer had at *plan*'s txid."""
    check_restored(out, history.entries[history.k_of(history.new, plan.txid)]["checksum"])


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("which", ["last segment", "snapshot chunk", "snapshot manifest"])
def test_a_broken_object_is_avoided_or_fails_the_restore_with_its_key(
    history, broken_copy, tmp_path, capsys, fault, which
):
    """A broken object of the plan: the restore falls back to the next cheapest plan
    for the same point that avoids it (a warning names the object and the plan used),
    and fails only when no plan avoids it, naming the object, with a hint that works."""
    copy, plan = broken_copy
    manifest = asyncio.run(
        Replica.open(copy.as_uri()).fetch_manifest(plan.snapshot.manifest_digest)
    )
    digest = {
        "last segment": plan.segments[-1].digest,
        "snapshot chunk": manifest.chunks[-1],
        "snapshot manifest": plan.snapshot.manifest_digest,
    }[which]
    other = plan.segments[0].digest if which != "last segment" else manifest.chunks[0]
    if other == digest:
        other = plan.snapshot.manifest_digest
    transform, problem = FAULTS[fault]
    transform(object_path(copy, digest), object_path(copy, other))
    # Every plan of the point needs the last segment; the snapshot has older ones
    # (the history takes one every 3 s) unless it is the generation's first.
    index = history.new
    unusable = digest if which == "last segment" else plan.snapshot.manifest_digest
    alternative = plan_point("local", index, plan.txid, {unusable})

    out = tmp_path / "out" / "restored.db"
    out.parent.mkdir()
    code = main(restore_argv(copy, out, plan))
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    # With a swap, whichever of the two objects is fetched first is reported.
    keys = {object_key(digest), object_key(other)} if fault == "swap" else {object_key(digest)}
    assert lines and all(line.startswith("warning: ") for line in lines[:-1]), err
    if code == 0:
        assert fault != "swap" and which != "last segment" and alternative is not None, err
        assert len(lines) == 1 and " instead" in lines[0], err
        assert any(f"{k}: {problem}" in lines[0] or f"{problem}: {k}" in lines[0] for k in keys)
        restored_txid(history, out, plan)
        assert sorted(p.name for p in out.parent.iterdir()) == ["restored.db"]
        return
    assert code == 1, err
    assert which == "last segment" or alternative is None or fault == "swap", err
    error = lines[-1]
    assert error.startswith("error: ") and any(k in error for k in keys), err
    if fault != "swap":
        assert problem in error
    assert "(hint: " in error
    # Nothing is left in OUT's directory.
    assert list(out.parent.iterdir()) == []
    # The hint names a point that works.
    hinted = re.search(r"use --txid (\d+) --generation ([0-9a-f]{16})", error)
    assert hinted, error
    txid, generation = int(hinted.group(1)), hinted.group(2)
    if which == "last segment" and fault != "swap":
        assert generation == plan.generation
        assert txid == max(plan.segments[-1].first_txid, plan.snapshot.txid + 1) - 1
    code = main(
        ["restore", copy.as_uri(), "-o", str(out), "--txid", str(txid), "--generation", generation]
    )
    assert code == 0, capsys.readouterr().err
    hinted_index = history.new if generation == history.new.generation else history.old
    check_restored(out, history.entries[history.k_of(hinted_index, txid)]["checksum"])


# Once the restore's temp file exists, every download stalls (after leaving a
# marker), so the signal is sure to arrive mid-restore however fast it runs.
STALLED_RESTORE = """
import asyncio, os, sys
from pathlib import Path
from litetool.storage.replica import Replica
original = Replica.fetch_object
tmp, marker = Path(os.environ["STALL_TMP"]), Path(os.environ["STALL_MARKER"])
async def stalled(self, digest, kind, **limits):
    if tmp.exists():
        marker.touch()
        await asyncio.sleep(60)
    return await original(self, digest, kind, **limits)
Replica.fetch_object = stalled
from litetool.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_restore_leaves_nothing(history, tmp_path, signum):
    out = tmp_path / "restored.db"
    marker = tmp_path.with_name(tmp_path.name + "-stalled")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            STALLED_RESTORE,
            "restore",
            history.replica_url,
            "-o",
            str(out),
            "--parallelism",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "STALL_TMP": str(out.with_name("restored.db.tmp")),
            "STALL_MARKER": str(marker),
        },
    )
    try:
        wait_for(marker.exists, "a download after the temp file was created")
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert list(tmp_path.iterdir()) == []
