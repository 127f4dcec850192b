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

Each figure is the median of several timed repeats. The last line of stdout
is one JSON object with every figure.

    .venv/bin/python bench/wal_codec.py [--size-mib 64] [--repeats 7]
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


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm caches and lazy imports
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def mb_per_second(size_bytes: int, seconds: float) -> float:
    return round(size_bytes / seconds / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    size_bytes = args.size_mib << 20
    figures: dict[str, object] = {
        "wal_bytes": size_bytes,
        "page_size": PAGE_SIZE,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }

    for byte_order in ByteOrder:
        data = build_wal(size_bytes, byte_order)
        decoded = decode_wal(data)
        frame_count = sum(t.frame_count for t in decoded.transactions)
        assert decoded.result.end_offset == len(data), decoded.result
        seconds = median_seconds(lambda data=data: decode_wal(data), args.repeats)
        key = f"validate_{byte_order.value}_mb_s"
        figures[key] = mb_per_second(len(data), seconds)
        figures[f"validate_{byte_order.value}_frames"] = frame_count
        print(f"validate WAL, {byte_order.value}-endian checksums: {figures[key]:>9} MB/s"
              f"  ({frame_count} frames, {len(decoded.transactions)} transactions)")

        piece = data[:REFERENCE_SLICE_BYTES]
        seconds = median_seconds(
            lambda piece=piece: decode_wal(piece, reader=read_transactions_reference), 3
        )
        key = f"reference_{byte_order.value}_mb_s"
        figures[key] = mb_per_second(len(piece), seconds)
        print(f"reference reader, {byte_order.value}-endian, 2 MiB slice: {figures[key]:>6} MB/s")

    data = build_wal(size_bytes, ByteOrder.LITTLE)
    array = np.frombuffer(data, dtype=np.uint8)
    figures["memcpy_numpy_mb_s"] = mb_per_second(
        len(data), median_seconds(array.copy, args.repeats)
    )
    figures["memcpy_bytearray_mb_s"] = mb_per_second(
        len(data), median_seconds(lambda: bytearray(data), args.repeats)
    )
    figures["sha256_mb_s"] = mb_per_second(
        len(data), median_seconds(lambda: hashlib.sha256(data).digest(), args.repeats)
    )
    print(f"memcpy (numpy copy):      {figures['memcpy_numpy_mb_s']:>9} MB/s")
    print(f"memcpy (bytearray(data)): {figures['memcpy_bytearray_mb_s']:>9} MB/s")
    print(f"hashlib.sha256:           {figures['sha256_mb_s']:>9} MB/s")

    # The per-frame checksum term c_f two ways, on the same frames.
    frame_count = (len(data) - 32) // (PAGE_SIZE + 24)
    words = checksum_fast.frame_words(data, 32, frame_count, PAGE_SIZE, ByteOrder.LITTLE)
    matrix = np.ascontiguousarray(checksum_fast.frame_coefficient_matrix(PAGE_SIZE))
    kernel_bytes = words.nbytes
    figures["terms_matmul_mb_s"] = mb_per_second(
        kernel_bytes, median_seconds(lambda: words @ matrix, args.repeats)
    )
    figures["terms_multiply_reduce_mb_s"] = mb_per_second(
        kernel_bytes,
        median_seconds(
            lambda: checksum_fast.frame_terms(data, 32, frame_count, PAGE_SIZE, ByteOrder.LITTLE),
            args.repeats,
        ),
    )
    print(f"c_f kernel, uint32 matmul:         {figures['terms_matmul_mb_s']:>9} MB/s")
    print(f"c_f kernel, multiply + row sum:    {figures['terms_multiply_reduce_mb_s']:>9} MB/s")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
