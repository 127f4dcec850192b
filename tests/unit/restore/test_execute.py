"""The executor on in-memory replicas built from real SQLite states: byte-exact restores,
write cost, parallelism, progress, verification, cleanup on failure and interruption."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import itertools
import os

import pytest
from restore_builders import PAGE_SIZE, build_replica, make_states

from litetool.errors import CorruptObject, ObjectNotFound, OutputExists, RestoreError
from litetool.restore import (
    RestoreTarget,
    execute_plan,
    load_candidates,
    plan_fetching,
)
from litetool.storage import Replica, object_key

_names = itertools.count()
HISTORY = 40


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    return make_states(tmp_path_factory.mktemp("states") / "source.db", HISTORY, seed=7)


@pytest.fixture
async def built(states):
    replica = Replica.open(f"memory://restore-execute-{next(_names)}")
    return await build_replica(
        replica, states, segment_sizes=[3, 1, 5, 2, 7, 4], snapshots_at=(10, 12, 30)
    )


async def plan_for(built, **target):
    candidates = await load_candidates([built.replica])
    plan, _ = await plan_fetching(candidates, RestoreTarget(**target), [built.replica])
    return plan


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


async def test_every_txid_restores_byte_for_byte(built, states, tmp_path):
    for txid in range(HISTORY + 1):
        plan = await plan_for(built, txid=txid)
        out = tmp_path / f"{txid}.db"
        result = await execute_plan(plan, built.replica, out, parallelism=3)
        assert out.read_bytes() == states[txid], txid
        assert result.path == out
        assert result.distinct_pages_written <= plan.db_size_pages
    assert leftovers(tmp_path) == sorted(f"{txid}.db" for txid in range(HISTORY + 1))


@pytest.mark.parametrize("parallelism", [1, 2, 8, 64])
async def test_parallelism_gives_the_same_file(built, states, tmp_path, parallelism):
    plan = await plan_for(built, txid=29)
    assert len(plan.segments) > 5
    await execute_plan(plan, built.replica, tmp_path / "out.db", parallelism=parallelism)
    assert (tmp_path / "out.db").read_bytes() == states[29]


async def test_each_page_is_written_once_when_applied_newest_first(built, tmp_path):
    # One worker applies the segments newest first, then the snapshot: no page is
    # written twice, however long the history.
    plan = await plan_for(built, txid=29)
    result = await execute_plan(plan, built.replica, tmp_path / "out.db", parallelism=1)
    assert result.page_writes == result.distinct_pages_written
    frames = sum(planned.entry.frames for planned in plan.segments)
    assert result.page_writes < frames + plan.snapshot.page_count


async def test_a_tiny_memory_budget_still_restores(built, states, tmp_path):
    plan = await plan_for(built, txid=40)
    out = tmp_path / "out.db"
    await execute_plan(plan, built.replica, out, parallelism=8, memory_budget_bytes=1)
    assert out.read_bytes() == states[40]


class RecordingProgress:
    def __init__(self):
        self.calls = []

    def start(self, total_bytes, total_objects):
        self.calls.append(("start", total_bytes, total_objects))

    def retotal(self, total_bytes, total_objects):
        self.calls.append(("retotal", total_bytes, total_objects))

    def advance(self, fetched_bytes, objects):
        self.calls.append(("advance", fetched_bytes, objects))

    def phase(self, text):
        self.calls.append(("phase", text))

    def finish(self, ok):
        self.calls.append(("finish", ok))


async def test_progress_reports_bytes_and_objects(built, tmp_path):
    plan = await plan_for(built, txid=40)
    progress = RecordingProgress()
    result = await execute_plan(plan, built.replica, tmp_path / "out.db", progress=progress)
    kinds = [call[0] for call in progress.calls]
    assert kinds[0] == "start" and kinds[-1] == "finish" and progress.calls[-1] == ("finish", True)
    advances = [call for call in progress.calls if call[0] == "advance"]
    assert sum(call[2] for call in advances) == result.objects_fetched
    assert sum(call[1] for call in advances) == result.bytes_fetched
    retotal = next(call for call in progress.calls if call[0] == "retotal")
    assert retotal[2] == result.objects_fetched
    # Stored bytes in the plan are what is downloaded (a repeated chunk only once).
    assert result.bytes_fetched <= plan.fetch_bytes
    assert ("phase", "checking integrity") in progress.calls


# -- verification --------------------------------------------------------------------------


async def corrupt(replica, key, transform):
    data, _ = await replica.store.get(key, max_bytes=1 << 30)
    await replica.store.put(key, transform(bytes(data)), mode="overwrite")


def flip(data):
    return data[:60] + bytes([data[60] ^ 0x01]) + data[61:]


@pytest.mark.parametrize(
    "transform, problem",
    [
        (flip, "does not match its name"),
        (lambda data: data[: len(data) // 2], "does not match its name"),
        (lambda data: b"", "does not match its name"),
    ],
)
@pytest.mark.parametrize("which", ["segment", "manifest", "chunk"])
async def test_corrupt_objects_fail_with_their_key(built, tmp_path, which, transform, problem):
    plan = await plan_for(built, txid=29)
    if which == "segment":
        digest = plan.segments[len(plan.segments) // 2].digest
    elif which == "manifest":
        digest = plan.snapshot.manifest_digest
    else:
        manifest = await built.replica.fetch_manifest(plan.snapshot.manifest_digest)
        digest = manifest.chunks[-1]
    await corrupt(built.replica, object_key(digest), transform)
    with pytest.raises(CorruptObject) as info:
        await execute_plan(plan, built.replica, tmp_path / "out.db")
    assert info.value.key == object_key(digest)
    assert problem in str(info.value)
    assert leftovers(tmp_path) == []


async def test_a_missing_object_fails_with_its_key(built, tmp_path):
    plan = await plan_for(built, txid=40)
    key = object_key(plan.segments[-1].digest)
    await built.replica.store.delete([key])
    with pytest.raises(ObjectNotFound) as info:
        await execute_plan(plan, built.replica, tmp_path / "out.db")
    assert info.value.key == key
    assert leftovers(tmp_path) == []


def _with_entry(plan, position, **changes):
    segments = list(plan.segments)
    planned = segments[position]
    segments[position] = dataclasses.replace(
        planned, entry=dataclasses.replace(planned.entry, **changes)
    )
    return dataclasses.replace(plan, segments=tuple(segments))


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"first_time_us": 1, "last_time_us": 1, "max_time_us": 1}, "commit times or db sizes"),
        ({"db_pages": 999}, "commit times or db sizes differ"),
        # The frame count fixes the payload length, checked before decompressing.
        ({"frames": 99}, "payload is 2092 bytes, what names the object says 101808"),
    ],
)
async def test_a_segment_must_say_what_its_index_entry_says(built, tmp_path, changes, problem):
    plan = await plan_for(built, txid=5)
    position = next(i for i, s in enumerate(plan.segments) if s.entry.transaction_count == 1)
    bad = _with_entry(plan, position, **changes)
    with pytest.raises(CorruptObject, match=problem) as info:
        await execute_plan(bad, built.replica, tmp_path / "out.db")
    assert info.value.key == object_key(plan.segments[position].digest)
    assert leftovers(tmp_path) == []


async def test_a_segment_with_other_txids_is_corrupt(built, tmp_path):
    plan = await plan_for(built, txid=5)
    entry = plan.segments[-1].entry
    bad = _with_entry(plan, -1, first_txid=entry.first_txid + 1, last_txid=entry.last_txid + 1)
    with pytest.raises(CorruptObject, match="holds txids"):
        await execute_plan(bad, built.replica, tmp_path / "out.db")


async def test_a_manifest_must_match_its_snapshot_entry(built, tmp_path):
    plan = await plan_for(built, txid=0)
    bad = dataclasses.replace(plan, snapshot=dataclasses.replace(plan.snapshot, page_count=1))
    with pytest.raises(CorruptObject, match="the index record says"):
        await execute_plan(bad, built.replica, tmp_path / "out.db")
    assert leftovers(tmp_path) == []


async def test_a_damaged_image_fails_the_integrity_check(states, tmp_path):
    image = bytearray(states[HISTORY])
    image[PAGE_SIZE + 8 : PAGE_SIZE + 40] = bytes(range(32))  # garbage in page 2's b-tree
    replica = Replica.open(f"memory://restore-execute-{next(_names)}")
    built = await build_replica(replica, [bytes(image)])
    plan = await plan_for(built)
    with pytest.raises(RestoreError, match=r"integrity check|cannot be read"):
        await execute_plan(plan, replica, tmp_path / "out.db")
    assert leftovers(tmp_path) == []


# -- the output ----------------------------------------------------------------------------


async def test_an_existing_output_is_refused_before_any_download(built, tmp_path):
    plan = await plan_for(built, txid=40)
    out = tmp_path / "out.db"
    out.write_bytes(b"precious")
    gets = built.replica.stats.snapshot()["get"].requests
    with pytest.raises(OutputExists, match="already exists"):
        await execute_plan(plan, built.replica, out)
    assert built.replica.stats.snapshot()["get"].requests == gets
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == ["out.db"]


@pytest.mark.parametrize("suffix", ["-wal", "-journal"])
async def test_a_stale_wal_or_journal_next_to_the_output_is_refused(built, tmp_path, suffix):
    plan = await plan_for(built, txid=40)
    (tmp_path / f"out.db{suffix}").write_bytes(b"old")
    with pytest.raises(OutputExists, match="SQLite would apply it"):
        await execute_plan(plan, built.replica, tmp_path / "out.db")
    assert leftovers(tmp_path) == [f"out.db{suffix}"]


async def test_output_appearing_during_the_restore_is_not_overwritten(built, tmp_path):
    plan = await plan_for(built, txid=40)
    out = tmp_path / "out.db"
    fetch_segment = built.replica.fetch_segment

    async def racing_fetch(digest, **limits):
        if not out.exists():
            out.write_bytes(b"someone else")
        return await fetch_segment(digest, **limits)

    built.replica.fetch_segment = racing_fetch
    with pytest.raises(OutputExists, match=r"already exists|appeared"):
        await execute_plan(plan, built.replica, out)
    assert out.read_bytes() == b"someone else"
    assert leftovers(tmp_path) == ["out.db"]


async def test_a_second_restore_to_the_same_output_is_refused(built, tmp_path):
    plan = await plan_for(built, txid=40)
    temp = tmp_path / "out.db.tmp"
    fd = os.open(temp, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(RestoreError, match="another restore is writing"):
            await execute_plan(plan, built.replica, tmp_path / "out.db")
        assert temp.exists()  # not ours to remove
    finally:
        os.close(fd)


async def test_a_temp_file_left_by_a_killed_restore_is_reused(built, states, tmp_path):
    plan = await plan_for(built, txid=40)
    (tmp_path / "out.db.tmp").write_bytes(b"x" * 100_000)
    (tmp_path / "out.db.tmp-journal").write_bytes(b"stale journal")
    await execute_plan(plan, built.replica, tmp_path / "out.db")
    assert (tmp_path / "out.db").read_bytes() == states[40]
    assert leftovers(tmp_path) == ["out.db"]


async def test_the_output_directory_is_created(built, states, tmp_path):
    plan = await plan_for(built, txid=3)
    out = tmp_path / "a" / "b" / "out.db"
    await execute_plan(plan, built.replica, out)
    assert out.read_bytes() == states[3]


# -- interruption --------------------------------------------------------------------------


async def test_cancellation_leaves_nothing(built, tmp_path):
    plan = await plan_for(built, txid=40)
    started = asyncio.Event()
    fetch_segment = built.replica.fetch_segment

    async def slow_fetch(digest, **limits):
        started.set()
        await asyncio.sleep(60)
        return await fetch_segment(digest, **limits)

    built.replica.fetch_segment = slow_fetch
    task = asyncio.create_task(execute_plan(plan, built.replica, tmp_path / "out.db"))
    await started.wait()
    assert (tmp_path / "out.db.tmp").exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


async def test_keyboard_interrupt_leaves_nothing(built, tmp_path):
    plan = await plan_for(built, txid=40)
    fetch_object = built.replica.fetch_object

    async def interrupted_fetch(digest, kind, **limits):
        raise KeyboardInterrupt

    built.replica.fetch_object = interrupted_fetch
    try:
        with pytest.raises(KeyboardInterrupt):
            await execute_plan(plan, built.replica, tmp_path / "out.db")
    finally:
        built.replica.fetch_object = fetch_object
    assert leftovers(tmp_path) == []
