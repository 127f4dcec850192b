"""Acceptance: restore what litetool replicated while another process wrote the database.

The history (``restore_history.py``): a writer process logs the content checksum
after each commit while ``litetool daemon`` replicates, over two generations.
Dozens of restores at random txids and random instants must each give exactly
the content the writer logged for the matching transaction, as an ordinary
database (integrity ok, rollback-journal header, no litetool tables, nothing
left next to it).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys

from restore_history import (
    DOWNTIME,
    PHASE_1,
    REPO,
    SEED,
    check_restored,
    restore,
)

from litetool.timespec import format_instant_us


def test_commit_times_are_within_milliseconds_of_the_writer(history):
    lags_ms = []
    for index in (history.old, history.new):
        for txid in range(index.first_txid + 1, index.last_txid + 1):
            entry = history.entries[history.k_of(index, txid)]
            stamped = index.commit_time_us(txid)
            # Never stamped before the transaction began (the writer may be
            # descheduled between COMMIT and reading its clock, so the time it
            # logs after COMMIT is no lower bound on a loaded machine).
            assert stamped >= entry["start_us"], (txid, stamped, entry)
            lags_ms.append((stamped - entry["time_us"]) / 1000)
    print(f"capture lag ms: median {statistics.median(lags_ms):.1f}, max {max(lags_ms):.1f}")
    assert statistics.median(lags_ms) < 100


def test_restores_at_random_txids_match_the_writer_exactly(history, tmp_path):
    rng = random.Random(SEED)
    picks = []
    for index, count in ((history.old, 12), (history.new, 10)):
        txids = range(index.first_txid, index.last_txid + 1)
        chosen = {index.first_txid, index.last_txid, *rng.sample(txids, count - 2)}
        picks += [(index, txid) for txid in sorted(chosen)]
    assert len(picks) >= 20
    for number, (index, txid) in enumerate(picks):
        out = tmp_path / f"txid-{number}.db"
        restore(history, out, "--txid", str(txid), "--generation", index.generation)
        check_restored(out, history.entries[history.k_of(index, txid)]["checksum"])
    assert sorted(os.listdir(tmp_path)) == sorted(f"txid-{n}.db" for n in range(len(picks)))


def test_restores_at_random_instants_match_the_writer_exactly(history, tmp_path):
    """Instants inside the writer's pauses: 150 ms after commit k, well before k + 1."""
    rng = random.Random(SEED + 1)
    quiet = [
        entry
        for k, entry in history.entries.items()
        if entry["pause"] >= 0.3 and (1 <= k <= PHASE_1 or k > PHASE_1 + DOWNTIME)
    ]
    chosen = rng.sample(quiet, min(len(quiet), 22))
    assert len(chosen) >= 20
    for number, entry in enumerate(chosen):
        out = tmp_path / f"at-{number}.db"
        restore(history, out, "--at", format_instant_us(entry["time_us"] + 150_000))
        check_restored(out, entry["checksum"])


def test_restores_at_litetools_own_commit_times_land_on_that_transaction(history, tmp_path):
    """Per-transaction resolution: --at the commit time of txid N gives txid N (or the
    last transaction captured with the very same time)."""
    rng = random.Random(SEED + 2)
    for number in range(10):
        index = rng.choice((history.old, history.new))
        txid = rng.randint(index.first_txid + 1, index.last_txid)
        time_us = index.commit_time_us(txid)
        landing = max(
            t for t in range(txid, index.last_txid + 1) if index.commit_time_us(t) <= time_us
        )
        out = tmp_path / f"own-{number}.db"
        restore(history, out, "--at", format_instant_us(time_us))
        check_restored(out, history.entries[history.k_of(index, landing)]["checksum"])
        if txid > index.first_txid + 1 and index.commit_time_us(txid - 1) < time_us:
            before = tmp_path / f"own-{number}-before.db"
            restore(history, before, "--at", format_instant_us(time_us - 1))
            check_restored(before, history.entries[history.k_of(index, txid - 1)]["checksum"])


def test_latest_and_the_gap_between_generations(history, tmp_path):
    restore(history, tmp_path / "latest.db")
    check_restored(tmp_path / "latest.db", history.entries[max(history.entries)]["checksum"])
    # An instant after the old generation's end and before the new one's start lands
    # on the old generation's last transaction.
    gap = (history.old.last_commit_time_us + history.new.first_commit_time_us) // 2
    if history.old.last_commit_time_us < gap < history.new.first_commit_time_us:
        restore(history, tmp_path / "gap.db", "--at", format_instant_us(gap))
        check_restored(tmp_path / "gap.db", history.entries[PHASE_1]["checksum"])


def test_the_real_command_line(history, tmp_path):
    out = tmp_path / "cli.db"
    txid = history.old.first_txid + PHASE_1 // 2
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litetool",
            "restore",
            history.replica_url,
            "-o",
            str(out),
            "--txid",
            str(txid),
            "--generation",
            history.old.generation,
            "--parallelism",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"restoring txid {txid} (committed " in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    check_restored(out, history.entries[history.k_of(history.old, txid)]["checksum"])
    again = subprocess.run(
        [sys.executable, "-m", "litetool", "restore", history.replica_url, "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {out} already exists; restore never overwrites it "
        "(hint: choose another output with -o, or move the existing file away)"
    ]


def test_dry_run_writes_nothing(history, tmp_path):
    def listing():
        return sorted(
            (str(p), p.stat().st_size)
            for p in [*tmp_path.rglob("*"), *history.replica_dir.rglob("*")]
        )

    before = listing()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litetool",
            "restore",
            history.replica_url,
            "--dry-run",
            "-o",
            str(tmp_path / "never.db"),
            "--at",
            "-1s",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"generation  {history.new.generation}" in result.stdout
    assert listing() == before
