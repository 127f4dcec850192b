"""Fixtures for the TUI tests: one real replica written by the engine, shared by the session."""

import pytest
from replica_builders import make_engine_replica


@pytest.fixture(scope="session")
def engine_replica(tmp_path_factory):
    """A replica written by ``litetool replicate`` (child process) while rows were committed."""
    return make_engine_replica(tmp_path_factory.mktemp("engine-replica"))
