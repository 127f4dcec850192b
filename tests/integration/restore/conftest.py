"""The replicated history, built once per session for every restore integration test."""

import pytest
from restore_history import History, record_history


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> History:
    return record_history(tmp_path_factory.mktemp("restore-history"))
