"""Only litetool.tui imports textual: the core and the CLI start without it."""

import subprocess
import sys

import pytest

CHECK = """
import sys
{imports}
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
assert not loaded, loaded
print("ok")
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "imports",
    [
        "import litetool.engine, litetool.engine.daemon, litetool.engine.metrics",
        "import litetool.storage, litetool.restore, litetool.config, litetool.errors",
        # every command module, as `litetool --help` loads them, including `tui`
        "from litetool.cli import build_parser; build_parser()",
        "import litetool.cli.tui",
        # the TUI's widget-free parts do not need textual either
        "import litetool.tui, litetool.tui.restore_points, litetool.tui.daemon_client, "
        "litetool.tui.restore_command, litetool.tui.display, litetool.tui.options, "
        "litetool.tui.segment_details, litetool.tui.replica_index, litetool.tui.zoom",
    ],
)
def test_textual_is_not_loaded(imports):
    result = run_python(CHECK.format(imports=imports))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_litetool_help_does_not_load_textual():
    code = (
        "import sys\n"
        "sys.argv = ['litetool', '--help']\n"
        "from litetool.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert not any(m.startswith('textual') for m in sys.modules), 'textual loaded'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "tui" in result.stdout


def test_the_app_does_load_textual():
    result = run_python(
        "import sys, litetool.tui; litetool.tui.LitetoolApp; print('textual' in sys.modules)"
    )
    assert result.stdout.strip() == "True"
