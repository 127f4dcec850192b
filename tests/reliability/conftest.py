"""The reliability suite: its figures fixture and the summary it prints."""

from __future__ import annotations

import json

import pytest
from rel_common import Figures, report, reported


@pytest.fixture
def figures(request):
    """A ``Figures`` for this test, reported when it ends (passed or failed)."""
    collected = Figures(request.node.name)
    yield collected
    report(collected)


def pytest_terminal_summary(terminalreporter):
    entries = reported()
    if not entries:
        return
    terminalreporter.section("reliability figures")
    for entry in entries:
        terminalreporter.write_line(json.dumps(entry, sort_keys=True))
