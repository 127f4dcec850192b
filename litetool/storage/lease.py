"""The writer lease (docs/FORMAT.md section 6).

``lease.json`` is a UTF-8 JSON object, not enveloped::

    {"writer": "host:pid:8 hex", "expires_us": 1764040030000000, "generation": "<16 hex>"}

A writer creates it with ``put(mode="create")``. When it exists, the writer
may take it over only if it is expired or already its own: by compare-and-swap
on its ETag where the store supports that (S3, GCS, Azure, memory), by
overwrite on a local directory (which has no compare-and-swap; the index
record ``put(mode="create")`` remains the fence there). Renewal happens only
past half the lease's life, so an idle writer makes no requests. Another live
writer's lease is ``ReplicaConflict``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from litetool.errors import ObjectNotFound, ReplicaConflict, ReplicaFormatError
from litetool.storage.format.json_fields import Fields, dump_json, parse_json_object
from litetool.storage.format.keys import LEASE_KEY, validate_generation
from litetool.storage.format.records import MAX_WRITER_LENGTH
from litetool.storage.store import (
    ALREADY_EXISTS,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    Store,
    WriteTag,
)

MAX_LEASE_BYTES = 64 << 10
_DELETE_HINT = "if no other litetool replicates here, delete lease.json from the replica"


@dataclass(frozen=True, slots=True)
class LeaseDocument:
    writer: str
    expires_us: int
    generation: str


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this process holds: the document plus what renewal needs."""

    writer: str
    generation: str
    expires_us: int
    ttl_us: int
    tag: WriteTag


def encode_lease(document: LeaseDocument) -> bytes:
    return dump_json(
        {
            "writer": document.writer,
            "expires_us": document.expires_us,
            "generation": document.generation,
        }
    )


def decode_lease(payload: bytes | bytearray | memoryview) -> LeaseDocument:
    try:
        fields = Fields("lease", parse_json_object("lease", payload))
        return LeaseDocument(
            writer=fields.text("writer", MAX_WRITER_LENGTH),
            expires_us=fields.integer("expires_us"),
            generation=fields.checked("generation", validate_generation),
        )
    except ReplicaFormatError as exc:
        raise ReplicaFormatError(exc.message, hint=_DELETE_HINT) from exc


def _now_us() -> int:
    return time.time_ns() // 1000


def _conflict(current: LeaseDocument, now_us: int) -> ReplicaConflict:
    seconds = max(0, current.expires_us - now_us) / 1e6
    return ReplicaConflict(
        f"the replica is leased by writer {current.writer} (generation "
        f"{current.generation}) for another {seconds:.0f} s",
        hint="another litetool replicates into this replica; stop it, or wait for its "
        "lease to expire",
    )


async def _read(store: Store) -> tuple[LeaseDocument, WriteTag]:
    data, meta = await store.get(LEASE_KEY, max_bytes=MAX_LEASE_BYTES)
    return decode_lease(data), WriteTag(meta.e_tag, meta.version)


async def read_lease(store: Store) -> LeaseDocument | None:
    """The current lease document, or None when there is none."""
    try:
        document, _ = await _read(store)
    except ObjectNotFound:
        return None
    return document


async def acquire_lease(
    store: Store, writer: str, ttl_seconds: float, generation: str, now_us: int | None = None
) -> Lease:
    """Take the lease for *writer*, or raise ReplicaConflict if another live writer has it."""
    validate_generation(generation)
    now_us = _now_us() if now_us is None else now_us
    ttl_us = int(ttl_seconds * 1_000_000)
    if ttl_us <= 0:
        raise ValueError("the lease ttl must be positive")
    document = LeaseDocument(writer, now_us + ttl_us, generation)
    payload = encode_lease(document)
    for _attempt in range(3):
        try:
            tag = await store.put(LEASE_KEY, payload, mode="create", expected=(ALREADY_EXISTS,))
            return Lease(writer, generation, document.expires_us, ttl_us, tag)
        except ALREADY_EXISTS:
            pass
        try:
            current, current_tag = await _read(store)
        except ObjectNotFound:
            continue  # released between our create and our read: try to create again
        if current.writer != writer and current.expires_us > now_us:
            raise _conflict(current, now_us)
        tag = await _swap(store, payload, current_tag, writer, now_us)
        if tag is not None:
            return Lease(writer, generation, document.expires_us, ttl_us, tag)
    raise ReplicaConflict(
        "the lease changed repeatedly while acquiring it", hint="another writer is starting"
    )


async def _swap(
    store: Store, payload: bytes, expected: WriteTag, writer: str, now_us: int
) -> WriteTag | None:
    """Replace the lease if it is still *expected*; None if it changed meanwhile."""
    try:
        return await store.put(
            LEASE_KEY, payload, mode=expected, expected=(PRECONDITION_FAILED, NOT_IMPLEMENTED)
        )
    except PRECONDITION_FAILED:
        return None
    except NOT_IMPLEMENTED:
        # No compare-and-swap (local directory): re-check, then overwrite.
        try:
            current, _ = await _read(store)
        except ObjectNotFound:
            return None
        if current.writer != writer and current.expires_us > now_us:
            return None
        return await store.put(LEASE_KEY, payload, mode="overwrite")


async def renew_lease_if_needed(store: Store, lease: Lease, now_us: int | None = None) -> Lease:
    """Extend *lease* when it is past half its life (no request otherwise).

    ReplicaConflict when the lease was lost (another writer took it over). A
    lease that is still this writer's although the ETag held is stale (an
    earlier renewal was stored, its answer lost) is renewed from the ETag found.
    """
    now_us = _now_us() if now_us is None else now_us
    if now_us < lease.expires_us - lease.ttl_us // 2:
        return lease
    document = LeaseDocument(lease.writer, now_us + lease.ttl_us, lease.generation)
    payload = encode_lease(document)
    tag = await _swap(store, payload, lease.tag, lease.writer, now_us)
    current = None
    if tag is None:
        try:
            current, current_tag = await _read(store)
        except ObjectNotFound:
            current = None
        if current is not None and current.writer == lease.writer:
            # Still ours: an earlier swap of ours was done although its answer was
            # lost (a timeout, or a 5xx the client retried into a 412), so the
            # ETag we hold is stale. Writer ids are unique per process.
            if current == document:
                tag = current_tag
            else:
                tag = await _swap(store, payload, current_tag, lease.writer, now_us)
    if tag is None:
        raise ReplicaConflict(
            f"lost the replica lease to writer {current.writer if current else '(none)'}",
            hint="another litetool took over this replica after our lease expired",
        )
    return Lease(lease.writer, lease.generation, document.expires_us, lease.ttl_us, tag)


async def release_lease(store: Store, lease: Lease) -> bool:
    """Delete the lease if it is still ours; returns whether it was deleted."""
    try:
        current, _ = await _read(store)
    except ObjectNotFound:
        return False
    if current != LeaseDocument(lease.writer, lease.expires_us, lease.generation):
        return False
    await store.delete([LEASE_KEY])
    return True
