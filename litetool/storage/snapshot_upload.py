"""Uploading a snapshot (docs/FORMAT.md section 4): chunks first, then the manifest.

The database image arrives as consecutive chunks of ``chunk_size`` bytes (the
last may be shorter), from a sync or an async iterable, so the whole image is
never in memory: at most ``concurrency`` chunks are held (being compressed,
hashed or uploaded) at any time. Chunks are content-addressed objects of kind
2, so a chunk that did not change since an earlier snapshot costs one
``put(mode="create")`` that finds it existing. The manifest is written last:
a manifest never names a chunk that is not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from litetool.storage.format.envelope import ObjectKind
from litetool.storage.format.manifest import SnapshotManifest, encode_manifest
from litetool.storage.format.records import SnapshotEntry

Buffer = bytes | bytearray | memoryview
#: ``Replica.put_object``: (kind, payload) -> ObjectRef (``.digest``, ``.stored_bytes``).
PutObject = Callable[[ObjectKind, Buffer], Awaitable[Any]]


async def _as_async(chunks: Iterable[Buffer] | AsyncIterable[Buffer]) -> AsyncIterator[Buffer]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


async def upload_snapshot(
    put_object: PutObject,
    chunks: Iterable[Buffer] | AsyncIterable[Buffer],
    *,
    txid: int,
    time_us: int,
    page_size: int,
    page_count: int,
    chunk_size: int,
    concurrency: int,
) -> SnapshotEntry:
    """Upload every chunk, then the manifest; the entry an index record names.

    ``ValueError`` when the chunks do not add up to ``page_count * page_size``
    in pieces of ``chunk_size`` (nothing is named then: uploaded chunks are
    unreferenced and GC removes them after the grace period).
    """
    image_size = page_size * page_count
    semaphore = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[Any]] = []
    received = 0

    async def upload(chunk: Buffer) -> Any:
        try:
            return await put_object(ObjectKind.SNAPSHOT_CHUNK, chunk)
        finally:
            semaphore.release()

    iterator = aiter(_as_async(chunks))
    try:
        while True:
            # A slot first, then the next chunk: at most *concurrency* chunks are
            # in memory (read, compressed or uploading) at any time.
            await semaphore.acquire()
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                semaphore.release()
                break
            if len(chunk) != min(chunk_size, image_size - received) or len(chunk) == 0:
                semaphore.release()
                raise ValueError(
                    f"snapshot chunk {len(tasks)} has {len(chunk)} bytes at offset {received} "
                    f"of a {image_size}-byte image with {chunk_size}-byte chunks"
                )
            received += len(chunk)
            tasks.append(asyncio.create_task(upload(chunk)))
        if received != image_size:
            raise ValueError(f"snapshot image has {received} bytes, expected {image_size}")
        refs = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    manifest = SnapshotManifest(
        txid, time_us, page_size, page_count, chunk_size, tuple(ref.digest for ref in refs)
    )
    manifest_ref = await put_object(ObjectKind.SNAPSHOT_MANIFEST, encode_manifest(manifest))
    return SnapshotEntry(
        manifest_digest=manifest_ref.digest,
        txid=txid,
        time_us=time_us,
        page_size=page_size,
        page_count=page_count,
        stored_bytes=manifest_ref.stored_bytes + sum(ref.stored_bytes for ref in refs),
    )
