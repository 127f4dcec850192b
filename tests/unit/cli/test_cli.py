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
        (("status", "--addr", "nonsense"), 2),
    ]
    for args, code in cases:
        result = litetool(*args, timeout=60)
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_no_command_is_usage_on_stderr_and_exit_2():
    result = litetool()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: litetool") and "a command is needed" in result.stderr


def test_a_bad_value_from_the_environment_is_blamed_on_its_variable(tmp_path):
    import os

    config = tmp_path / "lt.toml"
    config.write_text('[[databases]]\npath = "/tmp/a.db"\n[[databases.replicas]]\nurl = "/r"\n')
    env = {**os.environ, "LITETOOL_LOG__LEVEL": "loud"}
    result = litetool("databases", "--config", str(config), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: $LITETOOL_LOG__LEVEL: log.level:"), result.stderr


def test_replicate_and_the_config_file_share_the_snapshot_interval_default():
    from litetool.config.model import DatabaseConfig

    help_text = litetool("replicate", "--help").stdout
    assert "default: 24h" in help_text
    assert DatabaseConfig.model_fields["snapshot_interval"].default == 24 * 3600.0


def test_a_replica_url_typo_is_refused_before_anything_starts(tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    for url in ("s3:/bucket/app", "foo:bar", "ftp://host/dir"):
        before = sorted(tmp_path.rglob("*"))
        result = litetool("replicate", str(db), url, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (url, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "new generation" not in result.stderr
        assert sorted(tmp_path.rglob("*")) == before, url


def test_a_replicate_that_cannot_start_leaves_nothing_behind(tmp_path):
    text = tmp_path / "notsqlite.txt"
    text.write_text("hello, this is not a database\n")
    missing_dir = tmp_path / "no" / "such" / "dir"
    cases = [
        (missing_dir / "app.db", "database not found"),
        (text, "is not a SQLite database"),
        (tmp_path, "is not a file"),
    ]
    for db, message in cases:
        before = sorted(tmp_path.rglob("*"))
        result = litetool("replicate", str(db), (tmp_path / "replica").as_uri(), timeout=60)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert sorted(tmp_path.rglob("*")) == before, (db, result.stderr)


def test_config_init_writes_a_loadable_file(tmp_path):
    path = tmp_path / "lt.toml"
    db = tmp_path / "app.db"
    init = litetool("config", "init", str(path), "--db", str(db), "--replica", "file:///tmp/r")
    assert init.returncode == 0, init.stderr
    assert f"{db} (not there yet) -> file:///tmp/r" in init.stdout
    assert f"litetool daemon --config {path}" in init.stdout
    again = litetool("config", "init", str(path), "--db", str(db), "--replica", "file:///r")
    assert again.returncode == 2 and "already exists" in again.stderr
    shown = litetool("config", "show", "--config", str(path))
    assert shown.returncode == 0 and "[[databases]]" in shown.stdout
    assert f'path = "{db}"' in shown.stdout


def test_config_init_asks_for_what_it_needs_instead_of_writing_a_placeholder(tmp_path):
    result = litetool("config", "init", str(tmp_path / "lt.toml"))
    assert result.returncode == 2
    assert "--db PATH --replica URL" in result.stderr
    assert not (tmp_path / "lt.toml").exists()


def test_commands_find_the_config_that_config_init_wrote_here(tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    init = litetool("config", "init", "--db", "app.db", "--replica", "file:///tmp/r", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "litetool.toml").is_file()
    assert "next: litetool daemon   (then: litetool status, litetool tui)" in init.stdout
    listed = litetool("databases", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert str(db) in listed.stdout
