"""The bounded gather and the thread hop of large CPU-bound work."""

from __future__ import annotations

import asyncio
import threading

from litetool.storage.concurrency import THREAD_THRESHOLD_BYTES, gather_limited, in_thread_if_large


async def test_gather_limited_keeps_order_and_the_bound():
    running = 0
    most = 0

    async def work(value: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1
        return value * 2

    results = await gather_limited([(lambda v=v: work(v)) for v in range(10)], 3)
    assert results == [v * 2 for v in range(10)]
    assert most == 3


async def test_large_work_runs_in_a_worker_thread():
    loop_thread = threading.get_ident()
    small = await in_thread_if_large(THREAD_THRESHOLD_BYTES - 1, threading.get_ident)
    large = await in_thread_if_large(THREAD_THRESHOLD_BYTES, threading.get_ident)
    assert small == loop_thread
    assert large != loop_thread
