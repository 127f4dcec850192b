"""The command line: help, version, one-line errors and exit codes."""

import subprocess
import sys


def litetool(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "litetool", *args], capture_output=True, text=True, **kwargs
    )


def test_help_lists_every_command():
    result = litetool("--help")
    assert result.returncode == 0
    for command in ("replicate", "daemon", "generations", "config", "status", "version"):
        assert command in result.stdout


def test_version():
    result = litetool("version")
    assert result.returncode == 0 and result.stdout.startswith("litetool ")


def test_help_and_version_do_not_import_heavy_packages():
    code = (
        "import sys; from litetool.cli import build_parser; build_parser();"
        "heavy = {'textual', 'pydantic', 'pydantic_settings', 'numpy', 'obstore'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_errors_are_one_line_with_exit_codes(tmp_path):
    cases = [
        (("generations", "not-a-scheme://x"), 2),
        (("generations", str(tmp_path / "missing.db")), 2),
        (("generations", (tmp_path / "empty").as_uri()), 1),
        (("config", "show", "--config", str(tmp_path / "nope.toml")), 2),
        (("replicate", str(tmp_path / "missing.db"), (tmp_path / "r").as_uri()), 1),
        (("status", "--addr", "127.0.0.1:1"), 1),
    ]
    for args, code in cases:
        result = litetool(*args, timeout=60)
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_config_init_writes_a_loadable_file(tmp_path):
    path = tmp_path / "lt.toml"
    assert litetool("config", "init", str(path)).returncode == 0
    again = litetool("config", "init", str(path))
    assert again.returncode == 2 and "already exists" in again.stderr
    shown = litetool("config", "show", "--config", str(path))
    assert shown.returncode == 0 and "[[databases]]" in shown.stdout
