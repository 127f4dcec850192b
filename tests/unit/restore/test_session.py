"""Loading restore candidates from several replicas."""

from __future__ import annotations

import itertools

import pytest
from restore_builders import build_replica, make_states

from litetool.errors import CorruptObject, NoBackupFound
from litetool.restore import load_candidates
from litetool.storage import Replica, index_record_key

_names = itertools.count()


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    return make_states(tmp_path_factory.mktemp("states") / "source.db", 4, seed=5)


def fresh(name):
    return Replica.open(f"memory://restore-session-{next(_names)}", name=name)


async def test_replicas_without_backups_contribute_nothing(states):
    empty, marker_only, full = fresh("empty"), fresh("marker"), fresh("full")
    await marker_only.ensure_format(create=True)
    built = await build_replica(full, states)
    candidates = await load_candidates([empty, marker_only, full])
    assert [(name, index.generation) for name, index in candidates] == [("full", built.generation)]


async def test_no_backups_anywhere_names_every_replica():
    replicas = [fresh("a"), fresh("b")]
    with pytest.raises(NoBackupFound) as info:
        await load_candidates(replicas)
    assert info.value.message == (
        f"no backups found in a ({replicas[0].display_url}), b ({replicas[1].display_url})"
    )


async def test_a_broken_replica_is_skipped_with_a_warning_when_another_loads(states):
    broken, good = fresh("broken"), fresh("good")
    built = await build_replica(broken, states)
    await build_replica(good, states)
    key = index_record_key(built.generation, 0)
    data, _ = await broken.store.get(key, max_bytes=1 << 20)
    await broken.store.put(key, bytes(data)[:-3], mode="overwrite")
    warnings = []
    candidates = await load_candidates([broken, good], warn=warnings.append)
    assert [name for name, _ in candidates] == ["good"]
    assert len(warnings) == 1 and warnings[0].startswith("skipping replica broken (")
    assert key in warnings[0]
    with pytest.raises(CorruptObject, match=key):
        await load_candidates([broken])


async def test_generations_come_oldest_first_per_replica(states):
    replica = fresh("r")
    first = await build_replica(replica, states, base_time_us=1_764_040_000_000_000)
    second = await build_replica(replica, states, base_time_us=1_764_050_000_000_000)
    candidates = await load_candidates([replica])
    assert [index.generation for _, index in candidates] == [first.generation, second.generation]
