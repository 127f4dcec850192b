"""Configuration: the example file, environment overrides, ${VAR}, one-line errors."""

from pathlib import Path

import pytest

from litetool.config import load_settings, redacted_dict
from litetool.errors import ConfigError
from litetool.storage import parse_location

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "litetool.toml"
    path.write_text(text)
    return str(path)


MINIMAL = """
[[databases]]
path = "/tmp/app.db"
  [[databases.replicas]]
  url = "file:///tmp/replica"
"""


def test_the_example_config_is_valid_and_every_replica_parses(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    settings = load_settings(str(REPO / "config.toml"))
    assert settings.databases[0].checkpoint_interval == 60
    for replica in settings.databases[0].replicas:
        parse_location(replica.url, replica.store_options())
    shown = str(redacted_dict(settings))
    assert "very-secret-value" not in shown and "***" in shown


def test_defaults_and_durations(tmp_path):
    settings = load_settings(write(tmp_path, MINIMAL))
    db = settings.databases[0]
    assert db.replicas[0].sync_interval == 1.0
    assert db.replicas[0].display_name(0) == "file"
    assert db.resolved_spool_dir() == Path("/tmp/.app.db-litetool")


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LITETOOL_LOG__LEVEL", "debug")
    monkeypatch.setenv("LITETOOL_METRICS__ADDR", "127.0.0.1:9999")
    settings = load_settings(write(tmp_path, MINIMAL + '\n[log]\nlevel = "error"\n'))
    assert settings.log.level == "debug"
    assert settings.metrics.addr == "127.0.0.1:9999"


def test_variables_are_expanded_and_unset_ones_named(tmp_path, monkeypatch):
    text = MINIMAL + '  secret-access-key = "${LT_TEST_SECRET}"\n'
    monkeypatch.setenv("LT_TEST_SECRET", "s3cr3t-value")
    settings = load_settings(write(tmp_path, text))
    assert settings.databases[0].replicas[0].store_options()["secret_access_key"] == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)
    monkeypatch.delenv("LT_TEST_SECRET")
    with pytest.raises(ConfigError, match=r"secret-access-key: environment variable"):
        load_settings(write(tmp_path, text))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('  sync-intervl = "1s"\n', r"databases\[0\]\.replicas\[0\]\.sync-intervl: unknown key"),
        ('  sync-interval = "soon"\n', r"sync-interval: invalid duration"),
        ("  max-retries = -1\n", r"max-retries"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(write(tmp_path, MINIMAL + extra))
    assert "\n" not in str(info.value)


def test_malformed_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[[databases]\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(str(tmp_path / "nope.toml"))


def test_duplicate_replica_names_are_rejected(tmp_path):
    text = MINIMAL + '  name = "a"\n  [[databases.replicas]]\n  name = "a"\n  url = "file:///x"\n'
    with pytest.raises(ConfigError, match="replica names must be unique"):
        load_settings(write(tmp_path, text))
