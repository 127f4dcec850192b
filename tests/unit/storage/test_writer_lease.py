"""The writer lease (FORMAT.md section 6) on a store with compare-and-swap (memory)
and one without (local directory)."""

import asyncio
import itertools

import pytest

from litetool.errors import ReplicaConflict, ReplicaFormatError
from litetool.storage import LEASE_KEY, Replica

GEN = "019ab8fa42001234"
SECOND = 1_000_000
_names = itertools.count()


@pytest.fixture(params=["memory", "local"])
def replica(request, tmp_path):
    if request.param == "memory":
        return Replica.open(f"memory://lease-{next(_names)}")
    replica = Replica.open(str(tmp_path / "replica"))
    replica.store.open(create=True)
    return replica


async def test_acquire_and_conflict(replica):
    lease = await replica.acquire_lease("a", 30, GEN, now_us=0)
    assert (lease.writer, lease.expires_us, lease.ttl_us) == ("a", 30 * SECOND, 30 * SECOND)
    with pytest.raises(ReplicaConflict) as info:
        await replica.acquire_lease("b", 30, GEN, now_us=10 * SECOND)
    assert "leased by writer a" in info.value.message and "20 s" in info.value.message
    again = await replica.acquire_lease("a", 30, GEN, now_us=10 * SECOND)
    assert again.expires_us == 40 * SECOND
    document = await replica.read_lease()
    assert (document.writer, document.expires_us, document.generation) == ("a", 40 * SECOND, GEN)


async def test_expired_lease_is_taken_over(replica):
    await replica.acquire_lease("a", 30, GEN, now_us=0)
    lease = await replica.acquire_lease("b", 30, GEN, now_us=31 * SECOND)
    assert lease.writer == "b"
    assert (await replica.read_lease()).writer == "b"


async def test_renewal_is_free_until_half_life(replica):
    lease = await replica.acquire_lease("a", 30, GEN, now_us=0)
    requests = replica.stats.total_requests
    assert await replica.renew_lease_if_needed(lease, now_us=14 * SECOND) is lease
    assert replica.stats.total_requests == requests
    renewed = await replica.renew_lease_if_needed(lease, now_us=16 * SECOND)
    assert renewed.expires_us == 46 * SECOND
    assert (await replica.read_lease()).expires_us == 46 * SECOND
    again = await replica.renew_lease_if_needed(renewed, now_us=32 * SECOND)
    assert again.expires_us == 62 * SECOND


async def test_a_lost_lease_cannot_be_renewed(replica):
    lease = await replica.acquire_lease("a", 30, GEN, now_us=0)
    await replica.acquire_lease("b", 30, GEN, now_us=40 * SECOND)
    with pytest.raises(ReplicaConflict, match="lost the replica lease to writer b"):
        await replica.renew_lease_if_needed(lease, now_us=41 * SECOND)


async def test_release_only_our_own_lease(replica):
    lease_a = await replica.acquire_lease("a", 30, GEN, now_us=0)
    lease_b = await replica.acquire_lease("b", 30, GEN, now_us=31 * SECOND)
    assert not await replica.release_lease(lease_a)
    assert (await replica.read_lease()).writer == "b"
    assert await replica.release_lease(lease_b)
    assert await replica.read_lease() is None
    assert not await replica.release_lease(lease_b)
    assert (await replica.acquire_lease("c", 30, GEN, now_us=32 * SECOND)).writer == "c"


async def test_malformed_lease_is_a_format_error_with_a_hint(replica):
    await replica.store.put(LEASE_KEY, b'{"writer": 5}')
    with pytest.raises(ReplicaFormatError) as info:
        await replica.acquire_lease("a", 30, GEN, now_us=0)
    assert "delete lease.json" in info.value.hint


async def test_invalid_arguments(replica):
    with pytest.raises(ValueError):
        await replica.acquire_lease("a", 0, GEN)
    with pytest.raises(ReplicaFormatError):
        await replica.acquire_lease("a", 30, "not-a-generation")


async def test_exactly_one_of_many_concurrent_writers_wins():
    # Compare-and-swap matters here: only memory (and Azure) did this atomically in the
    # measurements, so the race runs on memory.
    replica = Replica.open(f"memory://lease-race-{next(_names)}")
    await replica.acquire_lease("old", 1, GEN, now_us=0)  # expired for everyone below

    async def attempt(writer):
        try:
            return await replica.acquire_lease(writer, 30, GEN, now_us=5 * SECOND)
        except ReplicaConflict:
            return None

    results = await asyncio.gather(*(attempt(f"w{i}") for i in range(16)))
    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 1
    assert (await replica.read_lease()).writer == winners[0].writer
