"""Hostile replicas: crafted to hang, exhaust or escape a restore.

Every crafted replica here is refused with one line that names the object
(or record) at fault and a non-zero exit, before anything is allocated for it
or written outside the output, and nothing is left behind: special files in
place of objects (a FIFO would block a read forever), symbolic links out of
the replica, zstd bombs, sizes and page numbers no SQLite database can have,
absurd txid ranges, keys that point elsewhere. The codecs themselves are
fuzzed with hypothesis: decoding returns a value or raises the codec's own
documented error, never anything else.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import struct
from pathlib import Path

import pytest
from hostile_replicas import (
    BASE_TIME_US,
    PAGE_SIZE,
    base_replica,
    bomb,
    changed_pages,
    content,
    files_below,
    image_content,
    manifest_json,
    put_object,
    raw_segment,
    record_json,
    run_restore,
    segment_json,
    snapshot_json,
    snapshot_of,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_common import scale

from litetool.cli import main
from litetool.errors import CorruptObject, ReplicaFormatError
from litetool.storage import (
    Codec,
    ObjectKind,
    Replica,
    SegmentTransaction,
    decode_manifest,
    decode_object,
    decode_record,
    decode_segment,
    encode_object,
    encode_segment,
    object_key,
    parse_key,
)
from litetool.storage.format.json_fields import Fields
from litetool.storage.lease import decode_lease

FUZZ_EXAMPLES = scale(150, 100_000)


def output_path(tmp_path: Path) -> Path:
    """OUT in a directory of its own (restore -o needs an existing directory), to see
    that a failed restore leaves nothing there."""
    directory = tmp_path / "out"
    directory.mkdir(exist_ok=True)
    return directory / "restored.db"


def restore_in_process(capsys, url: str, out: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["restore", url, "-o", str(out), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The error line; every other line of stderr is a warning."""
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    assert all(line.startswith("warning: ") for line in lines[:-1]), err
    assert lines[-1].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[-1]


def hinted_point(line: str) -> tuple[int, str] | None:
    found = re.search(r"use --txid (\d+) --generation ([0-9a-f]{16})", line)
    return (int(found.group(1)), found.group(2)) if found else None


@pytest.fixture
def crafted(tmp_path):
    return base_replica(tmp_path / "replica")


def test_the_base_replica_restores(crafted, tmp_path, capsys):
    """The control: what the hostile cases alter restores exactly, at both txids."""
    for txid, image in ((0, crafted.before), (1, crafted.after)):
        out = tmp_path / f"out-{txid}.db"
        code, _, err = restore_in_process(capsys, crafted.url, out, "--txid", str(txid))
        assert code == 0, err
        assert content(out) == image_content(image, tmp_path)


# -- special files and links in place of objects (file://) ---------------------------------


def _object_path(crafted, which: str) -> tuple[Path, str]:
    key = {
        "segment": object_key(crafted.segment),
        "snapshot chunk": object_key(crafted.chunks[-1]),
        "snapshot manifest": object_key(crafted.manifest),
        "index record": crafted.record_keys[1],
    }[which]
    return crafted.root / key, key


@pytest.mark.parametrize("which", ["segment", "snapshot chunk", "index record"])
def test_a_fifo_in_place_of_an_object_is_refused_at_once(crafted, tmp_path, capsys, which):
    """Opening a FIFO for reading waits for a writer: the restore used to hang until
    killed, leaving OUT.tmp behind. (A listing skips a FIFO: record 1 is a middle
    record here, which the records after it show to be missing.)"""
    if which == "index record":
        later = snapshot_of(crafted.root, crafted.after, 1)
        crafted.write_record(2, record_json(crafted.generation, 2, snapshots=[later]))
    path, key = _object_path(crafted, which)
    path.unlink()
    os.mkfifo(path)
    out = output_path(tmp_path)
    finished = run_restore(crafted.url, "-o", str(out), timeout=30)
    assert finished.code == 1, (finished.code, finished.stderr)
    line = one_error_line(finished.stderr)
    assert key in line and "is a FIFO (named pipe), not a regular file" in line, line
    assert list(out.parent.iterdir()) == []
    hinted = hinted_point(line)
    if which == "snapshot chunk":  # the only snapshot: nothing earlier avoids it
        assert hinted is None and "no earlier restore point avoids it" in line, line
        return
    assert hinted == (0, crafted.generation), line
    code, _, err = restore_in_process(capsys, crafted.url, out, "--txid", "0")
    assert code == 0, err
    assert content(out) == image_content(crafted.before, tmp_path)


@pytest.mark.parametrize(
    "link_to",
    ["outside file", "outside directory", "/dev/zero", "inside the replica"],
)
def test_symbolic_links_never_lead_a_read_outside_the_replica(crafted, tmp_path, capsys, link_to):
    path, key = _object_path(crafted, "segment")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if link_to == "outside file":
        # Even the right bytes: the replica holds a link, not the object.
        (outside / path.name).write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(outside / path.name)
    elif link_to == "outside directory":
        (outside / path.name).write_bytes(path.read_bytes())
        directory = path.parent
        for other in directory.iterdir():
            other.unlink()
        directory.rmdir()
        directory.symlink_to(outside)
    elif link_to == "/dev/zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    else:  # a link to a copy inside the replica is still the replica's own bytes
        copy = crafted.root / "copies" / path.name
        copy.parent.mkdir()
        copy.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(copy)
    out = output_path(tmp_path)
    code, _, err = restore_in_process(capsys, crafted.url, out)
    if link_to == "inside the replica":
        assert code == 0, err
        assert content(out) == image_content(crafted.after, tmp_path)
        return
    assert code == 1, err
    line = one_error_line(err)
    assert f"corrupt object {key}: is a symbolic link to " in line
    assert "outside the replica" in line
    assert list(out.parent.iterdir()) == []


# -- sizes no database can have ------------------------------------------------------------


def _one_frame_segment(crafted, page_number: int, db_pages: int) -> tuple[str, int]:
    payload = raw_segment(1, [(BASE_TIME_US + 1000, db_pages, [(page_number, bytes(PAGE_SIZE))])])
    return put_object(crafted.root, ObjectKind.SEGMENT, payload)


@pytest.mark.parametrize(
    "case",
    [
        "page 2^32-1 in a database of 2^32-1 pages",  # the probe: exit 0, 16 TiB sparse output
        "page 2^32-1, the index says a small database",
        "2^32-2 pages: SQLite's largest, more than the file system has",
        "a snapshot of 2^32-2 pages of 64 KiB",
    ],
)
def test_impossible_sizes_are_refused_before_anything_is_written(crafted, tmp_path, capsys, case):
    after_pages = len(crafted.after) // PAGE_SIZE
    if case.startswith("page 2^32-1 in"):
        digest, stored = _one_frame_segment(crafted, 2**32 - 1, 2**32 - 1)
        entry = segment_json(digest, 1, 1, stored, 1, 2**32 - 1)
        named = crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
        problem = "db_pages must be in 1..4294967294, got 4294967295"
    elif case.startswith("page 2^32-1, the index"):
        digest, stored = _one_frame_segment(crafted, 2**32 - 1, after_pages)
        entry = segment_json(digest, 1, 1, stored, 1, after_pages)
        crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
        named, problem = object_key(digest), "page number 4294967295"
    elif case.startswith("2^32-2 pages"):
        digest, stored = _one_frame_segment(crafted, 2**32 - 2, 2**32 - 2)
        entry = segment_json(digest, 1, 1, stored, 1, 2**32 - 2)
        crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
        named, problem = object_key(digest), "16.0 TiB (4294967294 pages of 4096 bytes, as"
    else:
        # A snapshot entry claiming 256 TiB, at txid 0 of a new record 0.
        big = dict(crafted.snapshot, page_count=2**32 - 2, page_size=65536)
        named = crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[big]))
        (crafted.root / crafted.record_keys[1]).unlink()
        named, problem = object_key(crafted.manifest), "256.0 TiB (4294967294 pages of 65536"
    out = output_path(tmp_path)
    before = files_below(tmp_path)
    code, _, err = restore_in_process(capsys, crafted.url, out)
    assert code == 1, err
    line = one_error_line(err)
    assert named in line and problem in line, line
    # Nothing was created.
    assert files_below(tmp_path) == before


# -- zstd bombs: memory bounded by what an object may hold ----------------------------------

BOMB_BYTES = 192 << 20


@pytest.fixture(scope="module")
def baseline_rss_mb(tmp_path_factory) -> float:
    """The peak RSS of a restore of the base replica: what a restore costs anyway."""
    directory = tmp_path_factory.mktemp("baseline")
    crafted = base_replica(directory / "replica")
    finished = run_restore(crafted.url, "-o", str(directory / "restored.db"))
    assert finished.code == 0, finished.stderr
    return finished.max_rss_mb


@pytest.mark.parametrize(
    "which", ["index record", "segment", "snapshot chunk", "snapshot manifest"]
)
def test_a_zstd_bomb_is_refused_before_it_is_decompressed(
    crafted, tmp_path, figures, baseline_rss_mb, which
):
    """A few KiB that decompress to 192 MiB, where the index or the manifest says what
    the object holds (a record or a manifest: a JSON document of at most 64 MiB).
    Before, a 1 GiB index record bomb restored at 2.1 GB RSS."""
    out = output_path(tmp_path)
    if which == "index record":
        key = crafted.record_keys[1]
        write(crafted.root / key, bomb(ObjectKind.INDEX_RECORD, BOMB_BYTES))
        expected = f"payload length {BOMB_BYTES} is more than the {64 << 20} bytes allowed"
    elif which == "segment":
        stored = bomb(ObjectKind.SEGMENT, BOMB_BYTES)
        digest = _content_address(crafted.root, stored)
        entry = dict(crafted.segment_entry, object=digest, bytes=len(stored))
        crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
        key = object_key(digest)
        expected = f"header says the payload is {BOMB_BYTES} bytes"
    elif which == "snapshot chunk":
        stored = bomb(ObjectKind.SNAPSHOT_CHUNK, BOMB_BYTES)
        chunk = _content_address(crafted.root, stored)
        pages = len(crafted.before) // PAGE_SIZE
        manifest, size = put_object(
            crafted.root, ObjectKind.SNAPSHOT_MANIFEST, manifest_json(pages, 64 << 20, [chunk])
        )
        snapshot = snapshot_json(manifest, 0, pages, size + len(stored))
        crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[snapshot]))
        key = object_key(chunk)
        expected = f"header says the payload is {BOMB_BYTES} bytes"
    else:
        stored = bomb(ObjectKind.SNAPSHOT_MANIFEST, BOMB_BYTES)
        manifest = _content_address(crafted.root, stored)
        snapshot = dict(crafted.snapshot, manifest=manifest)
        crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[snapshot]))
        key = object_key(manifest)
        expected = f"payload length {BOMB_BYTES} is more than the {64 << 20} bytes allowed"
    finished = run_restore(crafted.url, "-o", str(out))
    figures.set("bomb_mib", BOMB_BYTES >> 20)
    figures.set("peak_rss_mb", round(finished.max_rss_mb, 1))
    figures.set("baseline_rss_mb", round(baseline_rss_mb, 1))
    assert finished.code == 1, finished.stderr
    line = one_error_line(finished.stderr)
    assert key in line and expected in line, line
    assert finished.max_rss_mb < baseline_rss_mb + 48, (finished.max_rss_mb, baseline_rss_mb)
    assert list(out.parent.iterdir()) == []


def _content_address(root: Path, stored: bytes) -> str:
    import blake3

    digest = blake3.blake3(stored).hexdigest()
    write(root / object_key(digest), stored)
    return digest


# -- absurd txid ranges, keys that point elsewhere ------------------------------------------


def test_a_txid_range_too_long_for_a_segment_names_its_bounds_the_right_way_round():
    """It used to say "frames must be in 9223372036854775501..4294967295"."""
    entry = segment_json("ab" * 32, 307, 2**63 - 1, 100, 5, 3)
    document = record_json("0" * 16, 1, segments=[entry])
    with pytest.raises(ReplicaFormatError) as info:
        decode_record(json.dumps(document).encode())
    message = info.value.message
    assert "9223372036854775501..4294967295" not in message
    assert message == (
        "malformed index record: segments[0].last_txid is 9223372036854775501 transactions "
        "after first_txid 307: a segment holds at most 4294967295 (one frame each at least)"
    )
    # Any field whose bounds leave no valid value says so instead of an empty range.
    with pytest.raises(ReplicaFormatError, match=r"frames cannot be valid: it must be at least 9 "):
        Fields("doc", {"frames": 5}).integer("frames", 9, 3)


HOSTILE_RECORDS = {
    # What the index record of txid 1 says instead; its key is named.
    "object key with ../": lambda c: dict(c.segment_entry, object="../../../../../../etc/passwd"),
    "absolute object key": lambda c: dict(c.segment_entry, object="/etc/passwd"),
    "object key of another shape": lambda c: dict(c.segment_entry, object="objects/ab/cd"),
    "txids to 2^63-1": lambda c: dict(c.segment_entry, last_txid=2**63 - 1),
    "txids beyond 2^63-1": lambda c: dict(c.segment_entry, first_txid=2**63, last_txid=2**63),
    "a gap in the txids": lambda c: dict(c.segment_entry, first_txid=5, last_txid=5),
    "2^32-1 frames": lambda c: dict(c.segment_entry, frames=2**32 - 1),
    "2^32 frames": lambda c: dict(c.segment_entry, frames=2**32),
    "negative bytes": lambda c: dict(c.segment_entry, bytes=-1),
    "page size 3": lambda c: dict(c.segment_entry, page_size=3),
    "another page size": lambda c: dict(c.segment_entry, page_size=8192),
    "times as strings": lambda c: dict(c.segment_entry, first_time_us="now"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RECORDS))
def test_hostile_index_entries_are_refused_naming_the_record(crafted, tmp_path, capsys, case):
    entry = HOSTILE_RECORDS[case](crafted)
    key = crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
    named = {key}
    if case.startswith("2^32-1 frames"):  # well-formed: the segment disagrees with it
        named = {object_key(crafted.segment)}
    out = output_path(tmp_path)
    before = files_below(tmp_path)
    code, _, err = restore_in_process(capsys, crafted.url, out)
    assert code == 1, err
    line = one_error_line(err)
    assert any(name in line for name in named), line
    assert files_below(tmp_path) == before
    # Txid 0 does not need the record: its hint names it, and it restores.
    assert hinted_point(line) == (0, crafted.generation), line
    code, _, err = restore_in_process(capsys, crafted.url, out, "--txid", "0")
    assert code == 0, err
    assert content(out) == image_content(crafted.before, tmp_path)


def test_hostile_manifests_are_refused_naming_the_manifest(crafted, tmp_path, capsys):
    pages = len(crafted.before) // PAGE_SIZE
    cases = [
        (2 * PAGE_SIZE, ["../../../../etc/passwd"]),
        (2 * PAGE_SIZE, ["/etc/passwd"]),
        (2 * PAGE_SIZE, [crafted.chunks[0]] * 1000),
        (1 << 30, [crafted.chunks[0]]),  # a chunk of 1 GiB would be held in memory whole
    ]
    for chunk_size, chunks in cases:
        manifest, _ = put_object(
            crafted.root, ObjectKind.SNAPSHOT_MANIFEST, manifest_json(pages, chunk_size, chunks)
        )
        snapshot = dict(crafted.snapshot, manifest=manifest)
        crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[snapshot]))
        out = output_path(tmp_path)
        before = files_below(tmp_path)
        code, _, err = restore_in_process(capsys, crafted.url, out)
        assert code == 1, err
        line = one_error_line(err)
        assert f"corrupt object {object_key(manifest)}: " in line
        assert files_below(tmp_path) == before


def test_keys_that_are_not_the_replicas_are_never_read(crafted, tmp_path, capsys):
    """Listed keys of other shapes are ignored, whatever they hold."""
    generation_dir = crafted.root / "generations" / crafted.generation
    for name in ("index/0000000000000002.tmp", "index/000000000000000g", "compacted/x"):
        write(generation_dir / name, b"\xff" * 100)
    os.mkfifo(generation_dir / "index" / "fifo")
    (generation_dir / "index" / "0000000000000005-link").symlink_to("/dev/zero")
    out = tmp_path / "restored.db"
    code, _, err = restore_in_process(capsys, crafted.url, out)
    assert code == 0, err
    assert content(out) == image_content(crafted.after, tmp_path)


# -- not every surprising value is hostile ---------------------------------------------------


def test_frames_beyond_their_transactions_database_size_are_real_sqlite(tmp_path, capsys):
    """SQLite spills the pages of a large transaction to the WAL before its commit; a
    transaction that then shrinks the database (auto-vacuum) leaves frames for pages
    beyond its own final size. A segment holding them is a real one: it restores."""
    db = tmp_path / "spill.db"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
    connection.execute("PRAGMA auto_vacuum=FULL")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("PRAGMA cache_size=10")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    connection.execute("INSERT INTO t(v) VALUES (randomblob(100))")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    base = db.read_bytes()
    connection.execute("BEGIN")
    for _ in range(120):
        connection.execute("INSERT INTO t(v) VALUES (randomblob(3000))")
    connection.execute("DELETE FROM t WHERE id > 1")
    connection.execute("COMMIT")
    wal = (tmp_path / "spill.db-wal").read_bytes()
    connection.close()
    numbers, pages, size = [], [], 0
    for offset in range(32, len(wal) - 24 - PAGE_SIZE + 1, 24 + PAGE_SIZE):
        number, commit_size = struct.unpack_from(">II", wal, offset)
        numbers.append(number)
        pages.append(wal[offset + 24 : offset + 24 + PAGE_SIZE])
        if commit_size:
            size = commit_size
            break
    assert size and max(numbers) > size  # the premise: frames past the commit's size
    segment = encode_segment(
        PAGE_SIZE, 1, [SegmentTransaction(BASE_TIME_US + 1000, size, numbers, b"".join(pages))]
    )
    crafted = base_replica(tmp_path / "replica")
    # Txid 0 is the database before the transaction (journal mode as restored).
    base_rollback = bytearray(base)
    base_rollback[18:20] = b"\x01\x01"
    chunk, chunk_bytes = put_object(crafted.root, ObjectKind.SNAPSHOT_CHUNK, bytes(base_rollback))
    count = len(base) // PAGE_SIZE
    manifest, manifest_bytes = put_object(
        crafted.root, ObjectKind.SNAPSHOT_MANIFEST, manifest_json(count, len(base), [chunk])
    )
    snapshot = snapshot_json(manifest, 0, count, chunk_bytes + manifest_bytes)
    crafted.write_record(0, record_json(crafted.generation, 0, snapshots=[snapshot]))
    digest, stored = put_object(crafted.root, ObjectKind.SEGMENT, segment)
    entry = segment_json(digest, 1, 1, stored, len(numbers), size)
    crafted.write_record(1, record_json(crafted.generation, 1, segments=[entry]))
    out = tmp_path / "restored.db"
    code, _, err = restore_in_process(capsys, crafted.url, out)
    assert code == 0, err
    restored = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    live = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        query = "SELECT id, v FROM t ORDER BY id"
        assert restored.execute(query).fetchall() == live.execute(query).fetchall()
        assert restored.execute("PRAGMA page_count").fetchone()[0] == size
    finally:
        restored.close()
        live.close()


# -- fuzzing every replica codec -------------------------------------------------------------

FUZZ_TIMEOUT = pytest.mark.timeout(scale(300, 4 * 3600))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    # ``figures`` only counts: the same one for every example is what is wanted.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
HOSTILE_INTEGERS = st.sampled_from(
    [0, -1, 1, 2**31, 2**32 - 2, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
)
HOSTILE_VALUES = st.one_of(
    HOSTILE_INTEGERS,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.just("../../../etc/passwd"),
    st.just("/etc/passwd"),
    st.just("ab" * 32),
    st.lists(HOSTILE_INTEGERS, max_size=3),
    st.dictionaries(st.text(max_size=5), HOSTILE_INTEGERS, max_size=2),
)


def _mutate_document(data, document):
    """Replace, delete or add fields anywhere in a JSON document."""
    for _ in range(data.draw(st.integers(1, 4))):
        holders = [document]
        stack = [document]
        while stack:
            value = stack.pop()
            children = value.values() if isinstance(value, dict) else value
            for child in children:
                if isinstance(child, dict | list):
                    holders.append(child)
                    stack.append(child)
        holder = data.draw(st.sampled_from(holders))
        if isinstance(holder, dict):
            keys = sorted(holder)
            action = data.draw(st.sampled_from(["replace", "delete", "add"] if keys else ["add"]))
            if action == "add":
                holder[data.draw(st.text(max_size=8))] = data.draw(HOSTILE_VALUES)
            else:
                key = data.draw(st.sampled_from(keys))
                if action == "delete":
                    del holder[key]
                else:
                    holder[key] = data.draw(HOSTILE_VALUES)
        elif holder:
            holder[data.draw(st.integers(0, len(holder) - 1))] = data.draw(HOSTILE_VALUES)
    return document


def _mutate_bytes(data, payload: bytes) -> bytes:
    """Up to three mutations (none now and then: the valid encoding must decode)."""
    mutated = bytearray(payload)
    for _ in range(data.draw(st.integers(0, 3))):
        action = data.draw(st.sampled_from(["flip", "set", "cut", "extend", "splice"]))
        if action == "cut" or not mutated:
            mutated = mutated[: data.draw(st.integers(0, len(mutated)))]
        elif action == "extend":
            mutated += data.draw(st.binary(max_size=64))
        elif action == "splice":
            at = data.draw(st.integers(0, len(mutated)))
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            at = data.draw(st.integers(0, len(mutated) - 1))
            if action == "flip":
                mutated[at] ^= 1 << data.draw(st.integers(0, 7))
            else:
                mutated[at] = data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
    return bytes(mutated)


def _valid_segment(data) -> bytes:
    page_size = data.draw(st.sampled_from([512, 1024, 4096]))
    transactions = []
    for _ in range(data.draw(st.integers(1, 3))):
        numbers = data.draw(st.lists(st.integers(1, 2**32 - 2), min_size=1, max_size=3))
        transactions.append(
            SegmentTransaction(
                data.draw(st.integers(-(2**63), 2**63 - 1)),
                data.draw(st.integers(1, 2**32 - 2)),
                numbers,
                bytes(len(numbers) * page_size),
            )
        )
    return encode_segment(page_size, data.draw(st.integers(0, 2**62)), transactions)


def _segment_header_fields(data, payload: bytes) -> bytes:
    """Overwrite header or table fields with hostile integers of their width."""
    mutated = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        width = data.draw(st.sampled_from([4, 8]))
        if len(mutated) < width:
            break
        at = data.draw(st.integers(0, min(len(mutated) - width, 200)))
        value = data.draw(st.integers(0, 2 ** (8 * width) - 1) | st.sampled_from([0, 2**32 - 1]))
        mutated[at : at + width] = (value % 2 ** (8 * width)).to_bytes(width, "big")
    return bytes(mutated)


@FUZZ_TIMEOUT
@FUZZ
@given(st.data())
def test_segment_decoding_returns_a_segment_or_a_format_error(figures, data):
    payload = _valid_segment(data)
    mutate = data.draw(st.sampled_from([_mutate_bytes, _segment_header_fields]))
    hostile = mutate(data, payload)
    figures.add("examples")
    try:
        segment = decode_segment(hostile)
    except ReplicaFormatError:
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")
    # What decodes is consistent: counts, sizes and page numbers SQLite can have.
    assert segment.frame_count == sum(segment.frame_counts) >= segment.transaction_count >= 1
    assert len(segment.pages) == segment.frame_count * segment.page_size
    assert all(1 <= n <= 2**32 - 2 for n in segment.page_numbers)
    assert all(1 <= n <= 2**32 - 2 for n in segment.db_sizes_pages)


def _valid_record_document() -> dict:
    snapshot = snapshot_json("cd" * 32, 0, 3, 100)
    segments = [segment_json("ef" * 32, 1, 4, 100, 6, 5), segment_json("12" * 32, 5, 5, 10, 1, 5)]
    return record_json("0123456789abcdef", 0, snapshots=[snapshot], segments=segments)


@FUZZ_TIMEOUT
@FUZZ
@given(st.data())
def test_index_record_decoding_returns_a_record_or_a_format_error(figures, data):
    document = _valid_record_document()
    if data.draw(st.booleans()):
        payload = json.dumps(_mutate_document(data, document)).encode()
    else:
        payload = _mutate_bytes(data, json.dumps(document).encode())
    figures.add("examples")
    try:
        record = decode_record(payload)
    except ReplicaFormatError:
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")
    for segment in record.segments:
        assert 0 <= segment.first_txid <= segment.last_txid < 2**63
        assert segment.transaction_count <= segment.frames <= 2**32 - 1
        assert 1 <= segment.db_pages <= 2**32 - 2


@FUZZ_TIMEOUT
@FUZZ
@given(st.data())
def test_manifest_decoding_returns_a_manifest_or_a_format_error(figures, data):
    document = json.loads(manifest_json(5, 2 * PAGE_SIZE, ["ab" * 32, "cd" * 32, "ef" * 32]))
    if data.draw(st.booleans()):
        payload = json.dumps(_mutate_document(data, document)).encode()
    else:
        payload = _mutate_bytes(data, json.dumps(document).encode())
    figures.add("examples")
    try:
        manifest = decode_manifest(payload)
    except ReplicaFormatError:
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")
    assert 1 <= manifest.page_count <= 2**32 - 2
    assert len(manifest.chunks) == -(-manifest.image_size // manifest.chunk_size)


@FUZZ_TIMEOUT
@FUZZ
@given(st.data())
def test_lease_decoding_returns_a_lease_or_a_format_error(figures, data):
    document = {"writer": "host:1:abcd", "expires_us": BASE_TIME_US, "generation": "0" * 16}
    if data.draw(st.booleans()):
        payload = json.dumps(_mutate_document(data, document)).encode()
    else:
        payload = _mutate_bytes(data, json.dumps(document).encode())
    figures.add("examples")
    try:
        decode_lease(payload)
    except ReplicaFormatError:
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")


@FUZZ_TIMEOUT
@FUZZ
@given(st.data())
def test_envelope_decoding_returns_the_payload_or_corrupt_object(figures, data):
    payload = data.draw(st.binary(max_size=300))
    kind = data.draw(st.sampled_from(list(ObjectKind)))
    codec = data.draw(st.sampled_from(list(Codec)))
    stored = encode_object(kind, payload, codec)
    hostile = _mutate_bytes(data, stored)
    if data.draw(st.booleans()) and len(hostile) >= 16:
        # A header field replaced with a hostile value of its width (the length above all).
        at = data.draw(st.sampled_from([4, 5, 6, 7, 8]))
        width = 8 if at == 8 else 1
        value = data.draw(st.sampled_from([0, 1, 2, 255, 2**30, 2**30 + 1, 2**63, 2**64 - 1]))
        hostile = (
            hostile[:at] + (value % 2 ** (8 * width)).to_bytes(width, "big") + hostile[at + width :]
        )
    limits = data.draw(
        st.sampled_from([{}, {"expected_length": len(payload)}, {"max_length": len(payload)}])
    )
    digest = data.draw(st.sampled_from([None, "ab" * 32]))
    figures.add("examples")
    try:
        decoded = decode_object("k", hostile, kind, digest, **limits)
    except CorruptObject as exc:
        assert exc.key == "k"
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")
    # Only the original payload can pass the digest check.
    assert bytes(decoded) == payload


@FUZZ_TIMEOUT
@FUZZ
@given(
    st.text(max_size=120)
    | st.sampled_from(
        [
            "objects/ab/" + "ab" * 32,
            "objects/ab/" + "cd" * 32,
            "generations/0123456789abcdef/index/0000000000000001",
            "generations/0123456789abcdef/compacted/0000000000000009-0000000000000002",
            "generations/0123456789abcdef/compacted/0000000000000002-0000000000000009",
            "generations/0123456789abcdef/index/../../../etc/passwd",
            "litetool-replica.json",
            "lease.json",
            "../" * 3,
            "/etc",
        ]
    )
)
def test_key_parsing_returns_a_key_or_a_format_error(figures, text):
    figures.add("examples")
    try:
        parsed = parse_key(text)
    except ReplicaFormatError:
        figures.add("rejected_with_the_codecs_error")
        return
    figures.add("decoded")
    assert ".." not in parsed.key and not parsed.key.startswith("/")


def test_a_restore_reads_objects_only_through_these_codecs(crafted):
    """The control for the fuzzers: each codec decodes the base replica's real objects."""

    async def read_all():
        replica = Replica.open(crafted.url)
        index = await replica.index.load_generation(crafted.generation)
        manifest = await replica.fetch_manifest(crafted.manifest)
        segment = await replica.fetch_segment(crafted.segment)
        return index, manifest, segment

    index, manifest, segment = asyncio.run(read_all())
    assert index.last_txid == 1 and list(manifest.chunks) == crafted.chunks
    assert segment.page_numbers.tolist() == changed_pages(crafted.before, crafted.after)
