"""How storage work runs concurrently: a bounded gather of requests, and CPU-bound
work (compression, hashing, decoding) in a worker thread when it is large."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

#: Below this, compressing/hashing inline beats a thread hop.
THREAD_THRESHOLD_BYTES = 256 << 10
DEFAULT_CONCURRENCY = 8

T = TypeVar("T")


async def in_thread_if_large(size: int, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, in a worker thread when *size* bytes make it worth the hop."""
    if size >= THREAD_THRESHOLD_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)


async def gather_limited(
    factories: Iterable[Callable[[], Awaitable[T]]], limit: int = DEFAULT_CONCURRENCY
) -> list[T]:
    """Run coroutine factories with at most *limit* in flight; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    return list(await asyncio.gather(*(run(factory) for factory in factories)))
