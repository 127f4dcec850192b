"""Benchmark: segment put and get through litetool.storage, next to their ceilings.

A put is what the engine does per sync: envelope + zstd-1 + BLAKE3 + one
``put(mode="create")``; a get is what restore does per segment: one GET +
name check + zstd decompression + payload digest + segment decode. Both are
measured through ``Replica.put_object`` / ``Replica.fetch_segment`` with one
request at a time (c1) and eight in flight (c8), in objects/s and MB/s of
*uncompressed* segment payload, for small (64 KiB) and large (4 MiB)
segments made of real SQLite pages. ``raw_put_c1``/``raw_get_c1`` are the same
stored bytes through the store alone (no codec work): the I/O floor.

Stores: a local directory (always), and moto and SeaweedFS when
``tests/servers.py`` can start them (``--no-servers`` to skip). The ceiling is
measured in the same run on the same bytes: single-threaded zstd-1 compress,
decompress and BLAKE3, and their serial sum per direction (what one core
could do without any I/O).

    .venv/bin/python bench/storage.py [--quick] [--no-servers]

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import blake3
import zstandard

from litetool.storage import (
    ObjectKind,
    Replica,
    SegmentTransaction,
    encode_object,
    encode_segment,
)

REPO = Path(__file__).resolve().parents[1]
PAGE_SIZE = 4096
SIZES = {"64KiB": 16, "4MiB": 1024}  # pages per segment


def sqlite_pages(count: int, seed: int = 7) -> list[bytes]:
    """*count* pages of a real SQLite database (table + index, mixed text and ints)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, qty INT, note TEXT)")
        db.execute("CREATE INDEX t_name ON t(name)")
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
        rows = (
            (
                " ".join(rng.choices(words, k=3)) + f" {i}",
                rng.randrange(10**6),
                rng.randbytes(rng.randrange(20, 200)).hex(),
            )
            for i in range(count * 12)
        )
        db.executemany("INSERT INTO t(name, qty, note) VALUES (?, ?, ?)", rows)
        db.commit()
        db.close()
        data = path.read_bytes()
    pages = [data[i : i + PAGE_SIZE] for i in range(0, len(data), PAGE_SIZE)]
    while len(pages) < count:
        pages += pages
    return pages[:count]


def make_segments(pages: list[bytes], pages_per_segment: int, count: int) -> list[bytes]:
    """*count* distinct segment payloads (distinct txids and page choices)."""
    rng = random.Random(pages_per_segment)
    segments = []
    for index in range(count):
        chosen = rng.sample(range(len(pages)), pages_per_segment)
        transaction = SegmentTransaction(
            commit_time_us=1_764_040_000_000_000 + index,
            db_size_pages=len(pages),
            page_numbers=[n + 1 for n in chosen],
            pages=b"".join(pages[n] for n in chosen),
        )
        segments.append(encode_segment(PAGE_SIZE, 1 + index, [transaction]))
    return segments


def rate(count: int, nbytes: int, seconds: float) -> dict[str, float]:
    return {
        "objects_per_s": round(count / seconds, 1),
        "mb_per_s": round(nbytes / seconds / 1e6, 1),
    }


def ceilings(segments: list[bytes]) -> dict[str, dict[str, float]]:
    """Single-threaded zstd-1 and BLAKE3 over the same payloads (best of 3)."""
    compressor = zstandard.ZstdCompressor(level=1, write_content_size=True)
    decompressor = zstandard.ZstdDecompressor()
    compressed = [compressor.compress(s) for s in segments]
    total = sum(len(s) for s in segments)

    def best(function) -> float:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            function()
            timings.append(time.perf_counter() - started)
        return min(timings)

    seconds = {
        "zstd1_compress": best(lambda: [compressor.compress(s) for s in segments]),
        "zstd_decompress": best(lambda: [decompressor.decompress(c) for c in compressed]),
        "blake3": best(lambda: [blake3.blake3(s).digest() for s in segments]),
    }
    # per direction: put = compress + hash(payload) + hash(stored); get = hash + decompress + hash
    stored = sum(len(c) for c in compressed)
    hash_stored = seconds["blake3"] * stored / total
    seconds["put_cpu_serial"] = seconds["zstd1_compress"] + seconds["blake3"] + hash_stored
    seconds["get_cpu_serial"] = seconds["zstd_decompress"] + seconds["blake3"] + hash_stored
    figures = {name: rate(len(segments), total, value) for name, value in seconds.items()}
    figures["compression_ratio"] = round(total / stored, 2)
    return figures


async def measure_store(url: str, options: dict, segments: list[bytes]) -> dict:
    """Put every segment, then get every segment, at concurrency 1 and 8."""
    total = sum(len(s) for s in segments)
    results: dict[str, dict[str, float]] = {}
    half = len(segments) // 2
    for concurrency, batch in ((1, segments[:half]), (8, segments[half:])):
        replica = Replica.open(url, options)
        await replica.ensure_format(create=True)
        batch_bytes = sum(len(s) for s in batch)
        semaphore = asyncio.Semaphore(concurrency)

        async def put(payload: bytes, replica=replica, semaphore=semaphore) -> str:
            async with semaphore:
                return (await replica.put_object(ObjectKind.SEGMENT, payload)).digest

        async def get(digest: str, replica=replica, semaphore=semaphore) -> int:
            async with semaphore:
                return len((await replica.fetch_segment(digest)).pages)

        started = time.perf_counter()
        digests = await asyncio.gather(*(put(p) for p in batch))
        results[f"put_c{concurrency}"] = rate(
            len(batch), batch_bytes, time.perf_counter() - started
        )
        started = time.perf_counter()
        await asyncio.gather(*(get(d) for d in digests))
        results[f"get_c{concurrency}"] = rate(
            len(batch), batch_bytes, time.perf_counter() - started
        )
    # The store alone, same bytes already enveloped: what the I/O costs without litetool.
    replica = Replica.open(url, options)
    stored = [encode_object(ObjectKind.SEGMENT, payload) for payload in segments[:half]]
    batch_bytes = sum(len(s) for s in segments[:half])
    started = time.perf_counter()
    for index, data in enumerate(stored):
        await replica.store.put(f"bench/{index}", data)
    results["raw_put_c1"] = rate(len(stored), batch_bytes, time.perf_counter() - started)
    started = time.perf_counter()
    for index, data in enumerate(stored):
        await replica.store.get(f"bench/{index}", max_bytes=len(data))
    results["raw_get_c1"] = rate(len(stored), batch_bytes, time.perf_counter() - started)
    results["objects"] = len(segments)
    results["payload_bytes"] = total
    return results


def start_servers(names: list[str]) -> tuple[dict, list, dict]:
    """Start the requested servers from tests/servers.py; errors are reported, not fatal."""
    sys.path.insert(0, str(REPO / "tests"))
    started, errors, servers = {}, {}, []
    try:
        import servers as server_module
    except Exception as exc:  # the fixture module is optional for this benchmark
        return {}, [], {name: f"tests/servers.py not importable: {exc!r}" for name in names}
    for name in names:
        try:
            server = server_module.SERVER_CLASSES[name]().start()
        except Exception as exc:
            errors[name] = repr(exc)[:300]
            continue
        servers.append(server)
        started[name] = server
    return started, servers, errors


async def run(args: argparse.Namespace) -> dict:
    counts = {"64KiB": 60 if args.quick else 400, "4MiB": 6 if args.quick else 40}
    server_counts = {"64KiB": 40 if args.quick else 200, "4MiB": 4 if args.quick else 16}
    pages = sqlite_pages(4096)
    result: dict = {
        "benchmark": "storage",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "page_size": PAGE_SIZE,
        "ceiling": {},
        "stores": {},
        "errors": {},
    }
    segments = {size: make_segments(pages, n, counts[size]) for size, n in SIZES.items()}
    for size, payloads in segments.items():
        result["ceiling"][size] = ceilings(payloads)
    with tempfile.TemporaryDirectory(prefix="litetool-bench-storage-") as tmp:
        result["stores"]["local"] = {}
        for size, payloads in segments.items():
            url = str(Path(tmp) / f"replica-{size}")
            result["stores"]["local"][size] = await measure_store(url, {}, payloads)
    names = [] if args.no_servers else ["moto", "seaweedfs"]
    started, servers, errors = start_servers(names)
    result["errors"].update(errors)
    try:
        for name, server in started.items():
            result["stores"][name] = {}
            for size, n in SIZES.items():
                backend = server.fresh_backend()
                payloads = make_segments(pages, n, server_counts[size])
                result["stores"][name][size] = await measure_store(
                    backend.url, backend.options, payloads
                )
    finally:
        for server in servers:
            server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer objects")
    parser.add_argument("--no-servers", action="store_true", help="local directory only")
    result = asyncio.run(run(parser.parse_args()))
    for store, sizes in result["stores"].items():
        for size, figures in sizes.items():
            line = "  ".join(
                f"{key} {value['objects_per_s']:>8} obj/s {value['mb_per_s']:>7} MB/s"
                for key, value in figures.items()
                if isinstance(value, dict)
            )
            print(f"{store:>9} {size:>5}  {line}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
    sys.stderr.flush()
    # obstore's runtime threads can abort the interpreter during finalization.
    os._exit(0)


if __name__ == "__main__":
    main()
