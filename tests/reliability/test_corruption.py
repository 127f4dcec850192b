"""Replica rot: random damage to a replica the real engine wrote, then restores.

The replica: ``litetool replicate`` (its own process) follows a database
while a writer process commits numbered transactions (inserts of a few bytes
to several pages, updates, deletes, a VACUUM now and then) and logs the
checksum of the whole content after each; a snapshot every second. Then
litetool is stopped, the writer commits while it is away and truncates the
WAL, and litetool starts a second generation. Built once per session.

Each trial damages a working copy of it: bit flips, truncation, deletion,
two objects swapped, garbage appended, or a stale copy (an older object or
an older index record put back in place of a newer one), in a random object
or index record (half the time one that the trial's restores need). Then
three restores into fresh outputs: the latest point, a random ``--txid`` and
a random ``--at``. Each must either

- succeed with exactly the content the writer had at the point it reports
  (and that point is the one asked for: what the undamaged replica gives),
  or
- fail with one line naming a damaged object or record, and a hint naming a
  restore point that avoids it, which is then restored and checked too (when
  two objects were swapped, the hinted point may need the other one: its
  restore must then name that one, with the next hint, or say that no
  earlier point avoids it, which a brute force over every point checks).

The only way to land elsewhere is the one no reader can notice: the newest
index record deleted, which makes the point before it the latest. A restore
that succeeds with other content, lands on another point, fails naming an
undamaged key, or fails when a plan avoiding the damage existed, is counted
and fails the test (``silent_corruptions`` must be 0). The damage is undone
after each trial, so the copy is made once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from app_harness import Litetool
from rel_common import scale

from litetool.cli import main
from litetool.restore import (
    RestoreTarget,
    load_candidates,
    plan_point,
    plan_restore,
)
from litetool.storage import GenerationIndex, Replica, object_key
from litetool.storage.format.keys import try_parse_key

TRIALS = scale(200, 2_000)
SEED = int(os.environ.get("LITETOOL_TEST_SEED", "20261207"))
PHASE_1, DOWNTIME, PHASE_2 = 90, 6, 60

WRITER = r"""
import hashlib, json, random, sqlite3, sys, time
db, log_path = sys.argv[1], sys.argv[2]
first, count, seed = (int(arg) for arg in sys.argv[3:6])
rng = random.Random(seed)
connection = sqlite3.connect(db, isolation_level=None, timeout=30)
connection.execute("PRAGMA busy_timeout=30000")

def checksum():
    digest = hashlib.sha256()
    for (k,) in connection.execute("SELECT k FROM meta"):
        digest.update(f"meta:{k}:".encode())
    for row_id, n, v in connection.execute("SELECT id, n, v FROM t ORDER BY id"):
        digest.update(f"{row_id}:{n}:{len(v)}:".encode())
        digest.update(v)
    return digest.hexdigest()

with open(log_path, "a") as log:
    for k in range(first, first + count):
        # Exactly one transaction per k, so litetool's txids follow k.
        if k % 37 == 0:
            connection.execute("VACUUM")  # the file shrinks; the content stays that of k - 1
        else:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE meta SET k = ?", (k,))
            if k % 37 == 36:
                connection.execute("DELETE FROM t WHERE n % 4 = 0")
            (top,) = connection.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()
            for _ in range(rng.randint(1, 4)):
                choice = rng.random()
                if choice < 0.6 or top == 0:
                    size = rng.choice((10, 200, 1500, 6000, 14000))
                    row = (rng.randrange(100), rng.randbytes(size))
                    connection.execute("INSERT INTO t(n, v) VALUES (?, ?)", row)
                    top += 1
                elif choice < 0.85:
                    data = rng.randbytes(rng.choice((30, 900)))
                    change = (data, rng.randrange(100), rng.randint(1, top))
                    connection.execute("UPDATE t SET v = ?, n = ? WHERE id = ?", change)
                else:
                    connection.execute("DELETE FROM t WHERE id = ?", (rng.randint(1, top),))
            connection.execute("COMMIT")
        log.write(json.dumps({"k": k, "checksum": checksum()}) + "\n")
        log.flush()
        time.sleep(rng.uniform(0.005, 0.03))
connection.close()
"""


def content_checksum(path: Path) -> str:
    """The checksum of the whole content of a restored database (integrity ok); the
    writer's for its k (after a VACUUM, the same as k - 1's)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        digest = hashlib.sha256()
        ks = [k for (k,) in connection.execute("SELECT k FROM meta")]
        for k in ks:
            digest.update(f"meta:{k}:".encode())
        for row_id, n, v in connection.execute("SELECT id, n, v FROM t ORDER BY id"):
            digest.update(f"{row_id}:{n}:{len(v)}:".encode())
            digest.update(v)
        return digest.hexdigest()
    finally:
        connection.close()


def restored_checksum(path: Path) -> str | None:
    """:func:`content_checksum`, or None for a database that is damaged or unreadable."""
    try:
        return content_checksum(path)
    except (AssertionError, sqlite3.Error):
        return None


@dataclass
class History:
    replica: Path  # pristine, never damaged
    checksums: dict[int, str]  # by the writer's k (0: before the writer)
    indexes: list[GenerationIndex]  # oldest first, every segment's detail attached
    bases: dict[str, int]  # generation -> the writer's k at its first txid
    manifest_chunks: dict[str, list[str]]
    files: list[str] = field(default_factory=list)  # every object and record key

    def expected_k(self, generation: str, txid: int) -> int:
        index = next(i for i in self.indexes if i.generation == generation)
        return self.bases[generation] + txid - index.first_txid

    @property
    def candidates(self):
        return [("replica", index) for index in self.indexes]


def _run_writer(db: Path, log: Path, first: int, count: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            WRITER,
            str(db),
            str(log),
            str(first),
            str(count),
            str(SEED + first),
        ],
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("corruption-history")
    db, log, replica = root / "app.db", root / "writer.jsonl", root / "replica"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INT, v BLOB)")
    connection.execute("CREATE INDEX t_n ON t(n)")
    connection.execute("CREATE TABLE meta(k INT)")
    connection.execute("INSERT INTO meta VALUES (0)")
    connection.close()
    litetool = Litetool(
        db,
        replica.as_uri(),
        root / "litetool.log",
        "--snapshot-interval",
        "1s",
        "--sync-interval",
        "150ms",
    )
    litetool.start()
    try:
        litetool.wait_caught_up()
        _run_writer(db, log, 1, PHASE_1)
        litetool.wait_caught_up()
    finally:
        assert litetool.stop() == 0, litetool.tail()
    # While litetool is away: commits, then the WAL truncated (continuity is lost).
    _run_writer(db, log, PHASE_1 + 1, DOWNTIME)
    connection = sqlite3.connect(db, isolation_level=None)
    assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    connection.close()
    litetool.start()
    try:
        litetool.wait_caught_up()
        _run_writer(db, log, PHASE_1 + DOWNTIME + 1, PHASE_2)
        litetool.wait_caught_up()
    finally:
        assert litetool.stop() == 0, litetool.tail()

    # The writer's initial content is k = 0.
    first = sqlite3.connect(root / "empty.db")
    first.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INT, v BLOB)")
    first.execute("CREATE TABLE meta(k INT)")
    first.execute("INSERT INTO meta VALUES (0)")
    first.commit()
    first.close()
    checksums = {0: content_checksum(root / "empty.db")}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        checksums[entry["k"]] = entry["checksum"]

    async def load():
        source = Replica.open(replica.as_uri(), name="replica")
        candidates = await load_candidates([source])
        indexes = [await source.fetch_details(index) for _, index in candidates]
        chunks = {}
        for index in indexes:
            for snapshot in index.snapshots:
                manifest = await source.fetch_manifest(snapshot.manifest_digest)
                chunks[snapshot.manifest_digest] = list(manifest.chunks)
        return indexes, chunks

    indexes, manifest_chunks = asyncio.run(load())
    assert len(indexes) == 2, [index.generation for index in indexes]
    old, new = indexes
    # One txid per writer commit in each generation.
    assert old.last_txid - old.first_txid == PHASE_1
    assert new.last_txid - new.first_txid == PHASE_2
    bases = {old.generation: 0, new.generation: PHASE_1 + DOWNTIME}
    files = sorted(
        str(path.relative_to(replica))
        for path in replica.rglob("*")
        if path.is_file() and path.parts[len(replica.parts)] in ("objects", "generations")
    )
    return History(replica, checksums, indexes, bases, manifest_chunks, files)


# -- faults ----------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    keys: list[str]  # the damaged keys (a swap or a stale copy damages the first, or both)
    saved: dict[str, bytes]

    def undo(self, root: Path) -> None:
        for key, data in self.saved.items():
            (root / key).write_bytes(data)


def inject(rng: random.Random, root: Path, history: History, wanted: list[str]) -> Fault:
    """One random fault in a random file (half the time one of *wanted*)."""
    pool = wanted if wanted and rng.random() < 0.5 else history.files
    key = rng.choice(pool)
    path = root / key
    data = path.read_bytes()
    kind = rng.choice(["flip", "truncate", "delete", "swap", "append", "stale"])
    saved = {key: data}
    keys = [key]
    if kind == "flip":
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            bit = rng.randrange(len(damaged) * 8)
            damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
    elif kind == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "delete":
        path.unlink()
    elif kind == "append":
        path.write_bytes(data + rng.randbytes(rng.randint(1, 64)))
    elif kind == "swap":
        other = rng.choice([k for k in history.files if k != key])
        saved[other] = (root / other).read_bytes()
        path.write_bytes(saved[other])
        (root / other).write_bytes(data)
        keys.append(other)
    else:  # stale: an older version put back (a record: an older record of its generation)
        older = _older(history, key)
        if older is None:
            older = rng.choice([k for k in history.files if k != key])
        path.write_bytes((root / older).read_bytes())
    return Fault(kind, keys, saved)


def _older(history: History, key: str) -> str | None:
    parsed = try_parse_key(key)
    if parsed is None or parsed.seq is None:
        return None
    siblings = [
        k
        for k in history.files
        if (other := try_parse_key(k)) is not None
        and other.generation == parsed.generation
        and other.seq is not None
        and other.seq < parsed.seq
    ]
    return max(siblings) if siblings else None


# -- restores --------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run(url: str, out: Path, *argv: str) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["restore", url, "-o", str(out), *argv])
    return Outcome(code, stdout.getvalue(), stderr.getvalue())


RESTORING = re.compile(
    r"^restoring txid (\d+) \(committed [^)]*\) of generation ([0-9a-f]{16})", re.M
)
HINT = re.compile(r"use --txid (\d+) --generation ([0-9a-f]{16})")


@dataclass
class Target:
    name: str
    argv: tuple[str, ...]
    expected: tuple[str, int]  # (generation, txid) the undamaged replica restores


def pick_targets(rng: random.Random, history: History) -> list[Target]:
    candidates = history.candidates
    latest = plan_restore(candidates, RestoreTarget())
    index = rng.choice(history.indexes)
    txid = rng.randint(index.first_txid, index.last_txid)
    old, new = history.indexes
    start = old.commit_time_us(old.first_txid) - 500_000
    end = new.commit_time_us(new.last_txid) + 500_000
    while True:
        instant = rng.randint(start, end)
        try:
            at = plan_restore(candidates, RestoreTarget(time_us=instant))
            break
        except Exception:  # before the first point: draw again
            continue
    from litetool.timespec import format_instant_us

    return [
        Target("latest", (), (latest.generation, latest.txid)),
        Target(
            "txid",
            ("--txid", str(txid), "--generation", index.generation),
            (index.generation, txid),
        ),
        Target("at", ("--at", format_instant_us(instant)), (at.generation, at.txid)),
    ]


def needed_keys(history: History, target: Target) -> list[str]:
    """The objects and records the undamaged replica's plan for *target* uses."""
    generation, txid = target.expected
    index = next(i for i in history.indexes if i.generation == generation)
    plan = plan_point("replica", index, txid, set())
    assert plan is not None
    keys = [object_key(d) for d in plan.digests]
    keys += [object_key(c) for c in history.manifest_chunks[plan.snapshot.manifest_digest]]
    keys += [k for k in history.files if k.startswith(f"generations/{generation}/")]
    return keys


def could_avoid(history: History, fault: Fault, target: Target) -> bool:
    """Whether a plan for the target's point avoids every object the fault damaged (only
    for faults that touch objects alone: a damaged record changes what is known)."""
    digests = set()
    for key in fault.keys:
        parsed = try_parse_key(key)
        if parsed is None or parsed.digest is None:
            return False
        digests.add(parsed.digest)
    generation, txid = target.expected
    index = next(i for i in history.indexes if i.generation == generation)
    if target.name != "latest":  # its point is inside a damaged segment: its detail is needed
        for segment in index.segments:
            inside = segment.first_txid <= txid < segment.last_txid and txid != index.first_txid
            if segment.digest in digests and inside:
                return False
    avoid = set(digests)
    for manifest, chunks in history.manifest_chunks.items():
        if digests.intersection(chunks):
            avoid.add(manifest)
    return plan_point("replica", index, txid, avoid) is not None


NO_POINT = "no earlier restore point avoids it"


def any_point_avoids(history: History, fault: Fault, upto: tuple[str, int]) -> bool:
    """Whether some restore point at or before *upto* (a generation's points, then every
    older generation's) has a plan that avoids every object the fault damaged."""
    digests = {parsed.digest for parsed in map(try_parse_key, fault.keys) if parsed is not None}
    digests.discard(None)
    avoid = set(digests)
    for manifest, chunks in history.manifest_chunks.items():
        if digests.intersection(chunks):
            avoid.add(manifest)
    generation, txid = upto
    for index in history.indexes:
        if index.generation > generation:
            continue
        last = txid if index.generation == generation else index.last_txid
        for point in range(index.first_txid, last + 1):
            if plan_point("replica", index, point, avoid) is not None:
                return True
    return False


@pytest.mark.timeout(scale(600, 4 * 3600))
def test_random_damage_never_restores_wrong_content(history, tmp_path, figures):
    work = tmp_path / "replica"
    shutil.copytree(history.replica, work)
    url = work.as_uri()
    rng = random.Random(SEED)
    # The newest index record of each generation: deleting it is what no reader can see.
    tails = {
        index.generation: max(
            k for k in history.files if k.startswith(f"generations/{index.generation}/index/")
        )
        for index in history.indexes
    }
    problems: list[str] = []
    outputs = tmp_path / "out"
    outputs.mkdir()
    started = time.monotonic()
    for trial in range(TRIALS):
        targets = pick_targets(rng, history)
        wanted = sorted({k for target in targets for k in needed_keys(history, target)})
        fault = inject(rng, work, history, wanted)
        figures.add("trials")
        figures.add("faults_injected")
        figures.add(f"fault_{fault.kind}")
        try:
            for target in targets:
                out = outputs / f"{trial}-{target.name}.db"
                outcome = run(url, out, *target.argv)
                verdict = judge(history, fault, target, outcome, out, url, tails)
                for name in verdict.split(":")[0].split("+"):
                    figures.add(name)
                if verdict.startswith(("silent_corruptions", "wrong_failures", "missed_fallbacks")):
                    problems.append(
                        f"trial {trial} {fault.kind} {fault.keys} {target.name}: {verdict}"
                    )
                for path in outputs.iterdir():
                    path.unlink()
        finally:
            fault.undo(work)
    figures.set("restores_per_second", round(3 * TRIALS / (time.monotonic() - started), 1))
    for name in ("silent_corruptions", "wrong_failures", "missed_fallbacks"):
        figures.values.setdefault(name, 0)
    assert not problems, "\n".join(problems[:20])
    assert figures.values["silent_corruptions"] == 0
    # The suite did what it says: both ways out were taken many times.
    assert figures.values.get("restored_exactly", 0) > TRIALS // 2
    assert figures.values.get("failed_as_expected", 0) > TRIALS // 20
    assert figures.values.get("hints_checked", 0) > TRIALS // 20


def judge(
    history: History,
    fault: Fault,
    target: Target,
    outcome: Outcome,
    out: Path,
    url: str,
    tails: dict[str, str],
) -> str:
    """Counter names joined by '+' (details after a colon) for one restore."""
    undetectable = fault.kind == "delete" and tails.get(target.expected[0]) == fault.keys[0]
    err = outcome.err
    if "Traceback" in err or "internal error" in err or outcome.code not in (0, 1):
        return f"wrong_failures: exit {outcome.code}: {err.strip()[-300:]}"
    lines = err.strip().splitlines()
    if lines and not all(line.startswith("warning: ") for line in lines[:-1]):
        return f"wrong_failures: more than one error line: {err}"
    if outcome.code == 0:
        found = RESTORING.search(outcome.out)
        if found is None:
            return f"wrong_failures: no restored point in {outcome.out!r}"
        landed = (found.group(2), int(found.group(1)))
        if restored_checksum(out) != history.checksums[history.expected_k(*landed)]:
            return f"silent_corruptions: content of {landed} is not the writer's"
        if landed == target.expected:
            return "restored_exactly"
        if undetectable and landed[0] == target.expected[0] and landed[1] < target.expected[1]:
            # The generation's newest record deleted: as if it had not been written yet.
            return "restored_exactly+restored_earlier_point"
        return f"silent_corruptions: landed on {landed}, expected {target.expected}"
    error = lines[-1] if lines else ""
    if undetectable and target.name == "txid" and "is not a restore point" in error:
        return "failed_as_expected+failed_past_a_deleted_newest_record"
    if not error.startswith("error: ") or not any(key in error for key in fault.keys):
        return f"wrong_failures: the error names no damaged key: {error}"
    if out.exists() or out.with_name(out.name + ".tmp").exists():
        return "wrong_failures: files left behind"
    if could_avoid(history, fault, target):
        return f"missed_fallbacks: a plan avoided {fault.keys}: {error}"
    hinted = HINT.search(error)
    if hinted is None:
        return "failed_as_expected+hints_naming_no_point"
    # A fault that damaged two keys (a swap) may leave the hinted point needing the other
    # one, unknown when the hint was made: its own error then names it, with the next hint.
    for step in range(len(fault.keys)):
        point = (hinted.group(2), int(hinted.group(1)))
        check = run(url, out, "--txid", str(point[1]), "--generation", point[0])
        if check.code == 0:
            if restored_checksum(out) != history.checksums[history.expected_k(*point)]:
                return f"silent_corruptions: the hinted point {point} restores other content"
            return "failed_as_expected+hints_checked" + ("+hint_chains" if step else "")
        error = check.err.strip().splitlines()[-1] if check.err.strip() else ""
        hinted = HINT.search(error)
        if check.code != 1 or not any(key in error for key in fault.keys):
            break
        if hinted is None:
            # Both damaged objects are known now. "No earlier restore point avoids it"
            # is right when no point up to the hinted one avoids every damaged object.
            if NO_POINT in error and not any_point_avoids(history, fault, point):
                return "failed_as_expected+hints_checked+hint_chains+hint_chains_to_no_point"
            break
    return f"wrong_failures: the hinted point {point} does not restore: {check.err.strip()}"
