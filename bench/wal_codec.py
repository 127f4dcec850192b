"""Benchmark: validating WAL bytes with litetool.wal, next to memcpy and sha256.

Builds a WAL of 4 KiB-page frames (64 MiB by default) with the encoder, in
both checksum byte orders, and measures in the same run:

- validation: ``decode_wal`` (header + batched numpy frame validation +
  grouping into transactions), MB/s of WAL bytes;
- the reference reader (plain Python, one frame at a time) on a small slice;
- a plain memory copy (numpy copy, and ``bytearray(data)``) and
  ``hashlib.sha256`` of the same bytes, as yardsticks;
- the two kernels for the per-frame checksum term: ``uint32`` matmul and the
  multiply + row-sum the codec uses.

Each figure is the median over several rounds; every round times each
operation once, so machine noise hits all figures alike. The last line of
stdout is one JSON object with every figure.

    .venv/bin/python bench/wal_codec.py [--size-mib 64] [--repeats 9]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from litetool.wal import (
    ByteOrder,
    checksum_fast,
    decode_wal,
    encode_wal,
    read_transactions_reference,
)

PAGE_SIZE = 4096
FRAMES_PER_TRANSACTION = 8
REFERENCE_SLICE_BYTES = 2 << 20


def build_wal(size_bytes: int, byte_order: ByteOrder) -> bytes:
    """A valid WAL of about ``size_bytes``: random pages, 8-frame transactions."""
    rng = np.random.default_rng(20240601)
    frame_count = max(1, size_bytes // (PAGE_SIZE + 24))
    pages = rng.integers(0, 256, size=(frame_count, PAGE_SIZE), dtype=np.uint8)
    transactions = []
    for first in range(0, frame_count, FRAMES_PER_TRANSACTION):
        rows = range(first, min(first + FRAMES_PER_TRANSACTION, frame_count))
        frames = [(1 + row % 5000, pages[row].tobytes()) for row in rows]
        transactions.append((frames, 5000))
    return encode_wal(
        transactions,
        page_size=PAGE_SIZE,
        salts=(0x1234ABCD, 0x0BADF00D),
        byte_order=byte_order,
    )


def measure_interleaved(
    runs: dict[str, tuple[Callable[[], object], int]], repeats: int
) -> dict[str, float]:
    """MB/s per named run: median over ``repeats`` rounds, each round timing every run once.

    Interleaving spreads the noise of a shared machine over all figures alike,
    so the ratios between them stay meaningful.
    """
    for run, _size in runs.values():
        run()  # warm caches and lazy imports
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (run, _size) in runs.items():
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    return {
        name: round(size / statistics.median(timings[name]) / 1e6, 1)
        for name, (_run, size) in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    figures: dict[str, object] = {
        "page_size": PAGE_SIZE,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    wals = {order: build_wal(args.size_mib << 20, order) for order in ByteOrder}
    runs: dict[str, tuple[Callable[[], object], int]] = {}
    for order, data in wals.items():
        decoded = decode_wal(data)
        assert decoded.result.end_offset == len(data), decoded.result
        figures[f"validate_{order.value}_frames"] = sum(
            t.frame_count for t in decoded.transactions
        )
        figures[f"validate_{order.value}_transactions"] = len(decoded.transactions)
        runs[f"validate_{order.value}_mb_s"] = (lambda data=data: decode_wal(data), len(data))
    data = wals[ByteOrder.LITTLE]
    figures["wal_bytes"] = len(data)
    array = np.frombuffer(data, dtype=np.uint8)
    runs["memcpy_numpy_mb_s"] = (array.copy, len(data))
    runs["memcpy_bytearray_mb_s"] = (lambda: bytearray(data), len(data))
    runs["sha256_mb_s"] = (lambda: hashlib.sha256(data).digest(), len(data))

    # The per-frame checksum term c_f two ways, on the same frames.
    frame_count = (len(data) - 32) // (PAGE_SIZE + 24)
    words = checksum_fast.frame_words(data, 32, frame_count, PAGE_SIZE, ByteOrder.LITTLE)
    matrix = np.ascontiguousarray(checksum_fast.frame_coefficient_matrix(PAGE_SIZE))
    runs["terms_matmul_mb_s"] = (lambda: words @ matrix, words.nbytes)
    runs["terms_multiply_reduce_mb_s"] = (
        lambda: checksum_fast.frame_terms(data, 32, frame_count, PAGE_SIZE, ByteOrder.LITTLE),
        words.nbytes,
    )
    figures.update(measure_interleaved(runs, args.repeats))

    # The plain-Python reference reader is ~100x slower: a 2 MiB slice, 3 rounds.
    slices = {order: wal[:REFERENCE_SLICE_BYTES] for order, wal in wals.items()}
    figures.update(
        measure_interleaved(
            {
                f"reference_{order.value}_mb_s": (
                    lambda piece=piece: decode_wal(piece, reader=read_transactions_reference),
                    len(piece),
                )
                for order, piece in slices.items()
            },
            3,
        )
    )

    for order in ByteOrder:
        print(
            f"validate {figures['wal_bytes'] / 2**20:.0f} MiB WAL,"
            f" {order.value + '-endian':13s} checksums:"
            f" {figures[f'validate_{order.value}_mb_s']:>8} MB/s"
            f"  ({figures[f'validate_{order.value}_frames']} frames,"
            f" {figures[f'validate_{order.value}_transactions']} transactions)"
        )
    for order in ByteOrder:
        print(f"reference reader, {order.value + '-endian':13s} 2 MiB slice:"
              f" {figures[f'reference_{order.value}_mb_s']:>8} MB/s")
    print(f"memcpy (numpy copy):               {figures['memcpy_numpy_mb_s']:>8} MB/s")
    print(f"memcpy (bytearray(data)):          {figures['memcpy_bytearray_mb_s']:>8} MB/s")
    print(f"hashlib.sha256:                    {figures['sha256_mb_s']:>8} MB/s")
    print(f"c_f kernel, uint32 matmul:         {figures['terms_matmul_mb_s']:>8} MB/s")
    print(f"c_f kernel, multiply + row sum:    {figures['terms_multiply_reduce_mb_s']:>8} MB/s")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
