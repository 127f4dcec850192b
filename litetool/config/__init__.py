"""Configuration: the only reader of config files and the environment.

Sources, highest priority first: values given in code (the CLI's quick-start
mode), ``LITETOOL_*`` environment variables (nested keys joined with ``__``,
e.g. ``LITETOOL_METRICS__ADDR``), then the TOML file. The file is found via
``--config``, then ``$LITETOOL_CONFIG``, then ``./litetool.toml`` (where
``litetool config init`` writes it), then ``/etc/litetool.toml``.

Keys are kebab-case in TOML (``sync-interval``). Durations are strings such
as ``"500ms"``, ``"10s"``, ``"24h"``, ``"7d"``; sizes such as ``"1GiB"``.
``${VAR}`` inside any string value is replaced by the environment variable
``VAR`` (an unset variable is an error naming the key); this is how secrets
stay out of the file. Unknown keys and bad values are rejected with a one-line
``ConfigError`` naming the key path.

pydantic-settings is imported only here and only when a configuration is
loaded, so commands that need no configuration start fast.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from litetool.errors import ConfigError
from litetool.timespec import format_duration

DEFAULT_CONFIG_PATH = "/etc/litetool.toml"
LOCAL_CONFIG_PATH = "litetool.toml"
ENV_CONFIG = "LITETOOL_CONFIG"
SECRET_KEYS = frozenset({"secret-access-key", "account-key", "session-token", "bearer-token"})
DURATION_KEYS = frozenset(
    {
        "sync-interval",
        "retention",
        "gc-grace",
        "checkpoint-interval",
        "snapshot-interval",
        "validation-interval",
        "timeout",
        "connect-timeout",
    }
)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Replica options that pass through to litetool.storage (TOML kebab-case -> snake_case).
REPLICA_STORE_OPTIONS = (
    "endpoint",
    "region",
    "access-key-id",
    "secret-access-key",
    "session-token",
    "virtual-hosted-style",
    "allow-http",
    "account-name",
    "account-key",
    "use-emulator",
    "service-account-path",
    "bearer-token",
    "timeout",
    "connect-timeout",
    "max-retries",
)


def find_config_path(explicit: str | None) -> Path | None:
    """The config file to read: --config, then $LITETOOL_CONFIG, then
    ./litetool.toml, then /etc/litetool.toml."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {env} (from ${ENV_CONFIG})")
        return path
    for default in (Path(LOCAL_CONFIG_PATH), Path(DEFAULT_CONFIG_PATH)):
        if default.is_file():
            return default
    return None


def expand_variables(value: Any, key_path: str = "") -> Any:
    """Replace ``${VAR}`` in every string of a parsed TOML tree."""
    if isinstance(value, dict):
        return {
            k: expand_variables(v, f"{key_path}.{k}" if key_path else k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_variables(v, f"{key_path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{key_path}: environment variable ${{{name}}} is not set")
            return os.environ[name]

        return _VAR.sub(substitute, value)
    return value


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return expand_variables(data)


def load_settings(
    config_path: str | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    require_file: bool = False,
    use_files: bool = True,
):
    """Load and validate the effective configuration (a ``Settings`` object)."""
    from litetool.config.model import build_settings

    path = find_config_path(config_path) if use_files else None
    if path is None and require_file:
        raise ConfigError(
            f"no config file: pass --config, set ${ENV_CONFIG}, or create ./{LOCAL_CONFIG_PATH} "
            f"or {DEFAULT_CONFIG_PATH}",
            hint="`litetool config init --db PATH --replica URL` writes ./litetool.toml",
        )
    data = read_toml(path) if path else {}
    return build_settings(data, overrides or {}, source=str(path) if path else None)


def redacted_dict(settings) -> dict[str, Any]:
    """The effective configuration as TOML-ready data, secrets replaced by ``***``."""

    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {
                k.replace("_", "-"): clean(v, k.replace("_", "-"))
                for k, v in value.items()
                if v is not None
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        if key in SECRET_KEYS:
            return "***"
        if key in DURATION_KEYS and isinstance(value, float):
            return format_duration(value)
        if isinstance(value, Path):
            return str(value)
        return value

    return clean(settings.model_dump(mode="python"))
