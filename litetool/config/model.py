"""The configuration schema (pydantic models) and its validation.

Imported lazily by ``litetool.config.load_settings``: pydantic-settings costs
over 100 ms to import, which commands such as ``--help`` must not pay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from litetool.errors import ConfigError
from litetool.timespec import parse_duration, parse_size


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


def _size(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
Bytes = Annotated[int, BeforeValidator(_size), Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=_kebab, populate_by_name=True, frozen=True
    )


class ReplicaConfig(_Section):
    """One replica of one database."""

    url: str = Field(min_length=1)
    name: str | None = None
    sync_interval: Seconds = 1.0
    retention: Seconds = 24 * 3600.0
    gc_grace: Seconds = 3600.0
    # Store options, passed to litetool.storage as snake_case keys.
    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    virtual_hosted_style: bool | None = None
    allow_http: bool | None = None
    account_name: str | None = None
    account_key: SecretStr | None = None
    use_emulator: bool | None = None
    service_account_path: str | None = None
    bearer_token: SecretStr | None = None
    timeout: Seconds | None = None
    connect_timeout: Seconds | None = None
    max_retries: int | None = Field(default=None, ge=0, le=20)

    def store_options(self) -> dict[str, Any]:
        """Options for ``litetool.storage`` (secrets revealed; never log this)."""
        options: dict[str, Any] = {}
        for key in (
            "endpoint",
            "region",
            "access_key_id",
            "virtual_hosted_style",
            "allow_http",
            "account_name",
            "use_emulator",
            "service_account_path",
            "max_retries",
        ):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        for key in ("secret_access_key", "session_token", "account_key", "bearer_token"):
            value = getattr(self, key)
            if value is not None:
                options[key] = value.get_secret_value()
        if self.timeout is not None:
            options["timeout_seconds"] = self.timeout
        if self.connect_timeout is not None:
            options["connect_timeout_seconds"] = self.connect_timeout
        return options

    def display_name(self, index: int) -> str:
        if self.name:
            return self.name
        scheme = self.url.split("://", 1)[0] if "://" in self.url else "file"
        return scheme if index == 0 else f"{scheme}{index}"


class DatabaseConfig(_Section):
    """One database and its replicas."""

    path: Path
    spool_dir: Path | None = None
    spool_max_bytes: Bytes = 1024**3
    checkpoint_soft_pages: int = Field(default=1000, ge=1)
    checkpoint_hard_pages: int = Field(default=10000, ge=1)
    checkpoint_interval: Seconds = 60.0
    snapshot_interval: Seconds = 24 * 3600.0
    validation_interval: Seconds = 0.0
    replicas: list[ReplicaConfig] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _check(self) -> DatabaseConfig:
        if self.checkpoint_hard_pages < self.checkpoint_soft_pages:
            raise ValueError("checkpoint-hard-pages must be >= checkpoint-soft-pages")
        names = [r.display_name(i) for i, r in enumerate(self.replicas)]
        if len(set(names)) != len(names):
            raise ValueError(f"replica names must be unique per database: {names}")
        return self

    def resolved_spool_dir(self) -> Path:
        """Where the local spool lives: next to the database unless configured."""
        if self.spool_dir is not None:
            return self.spool_dir.expanduser().absolute()
        return self.path.parent / f".{self.path.name}-litetool"


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class MetricsConfig(_Section):
    # host:port for Prometheus /metrics and the JSON /status; empty = off.
    addr: str = ""

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        if value and (":" not in value or not value.rsplit(":", 1)[1].isdigit()):
            raise ValueError(f"expected host:port, got {value!r}")
        return value


class _DictSource(PydanticBaseSettingsSource):
    """The parsed TOML file as a settings source (below the environment)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LITETOOL_",
        env_nested_delimiter="__",
        extra="forbid",
        alias_generator=_kebab,
        populate_by_name=True,
        frozen=True,
    )

    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    exec: str | None = None
    databases: list[DatabaseConfig] = []

    @model_validator(mode="after")
    def _unique_paths(self) -> Settings:
        paths = [str(db.path) for db in self.databases]
        if len(set(paths)) != len(paths):
            raise ValueError("a database path appears twice in databases")
        return self

    def database(self, path: str | Path) -> DatabaseConfig:
        wanted = Path(path).expanduser().absolute()
        for db in self.databases:
            if db.path == wanted:
                return db
        raise ConfigError(f"database {wanted} is not in the configuration")


def build_settings(data: dict[str, Any], overrides: dict[str, Any], *, source: str | None):
    """Validate TOML data + environment + overrides into a ``Settings``."""

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):
            return (init_settings, env_settings, _DictSource(settings_cls, data))

    try:
        loaded = _Loaded(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    return Settings.model_validate(loaded.model_dump(by_alias=False))


def _describe(exc: ValidationError, source: str | None) -> str:
    error = exc.errors(include_url=False)[0]
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part).replace("_", "-")
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    where = f"{source}: " if source else ""
    # A value from a LITETOOL_<SECTION>__<KEY> variable is blamed on it, not the file.
    if all(isinstance(part, str) for part in error["loc"]):
        variable = "LITETOOL_" + "__".join(str(p).upper() for p in error["loc"])
        if variable in os.environ:
            where = f"${variable}: "
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}{path or 'config'}: {message}{more}"
