"""The layering of DESIGN.md section 5, checked in fresh interpreters.

import-linter (run by `make test`) checks the static imports; this checks
what actually gets loaded.
"""

import subprocess
import sys

import pytest


def loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["litetool.engine.replication", "litetool.storage", "litetool.cli", "litetool.wal"]
)
def test_core_never_loads_textual(module):
    loaded = loaded_after(module)
    assert not any(name == "textual" or name.startswith("textual.") for name in loaded)


def test_wal_codec_loads_no_io_or_storage():
    loaded = loaded_after("litetool.wal")
    assert not {"obstore", "sqlite3", "asyncio", "litetool.storage", "litetool.engine"} & loaded
