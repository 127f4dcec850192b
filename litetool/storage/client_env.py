"""The HTTP client settings that a store's environment variables give.

obstore reads ``AWS_*``, ``GOOGLE_*`` and ``AZURE_*`` variables into a
store's configuration, client settings among them (``AWS_PROXY_URL``,
``AZURE_ALLOW_HTTP``, ``GOOGLE_ALLOW_INVALID_CERTIFICATES`` ...). But the
client options litetool passes (its timeouts) *replace* the ones obstore read,
so litetool reads those variables itself and passes them on with its own.
``allow_http`` of an ``s3://`` replica is decided with its endpoint by
``aws_environment``; the timeouts are litetool's (replica options).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from litetool.errors import ConfigError

PREFIXES = {"s3": "AWS_", "gs": "GOOGLE_", "az": "AZURE_"}
_BOOLEAN = ("allow_http", "allow_invalid_certificates", "http1_only", "http2_only")
_TEXT = (
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "user_agent",
    "default_content_type",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def client_options_from_env(
    scheme: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The client settings set for *scheme*'s store in the environment (ConfigError,
    naming the variable, for a boolean that is neither true nor false)."""
    prefix = PREFIXES.get(scheme)
    if prefix is None:
        return {}
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    for key in (*_BOOLEAN, *_TEXT):
        name = prefix + key.upper()
        value = environ.get(name)
        if value is None or value == "":
            continue
        if key in _BOOLEAN:
            word = value.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ConfigError(f"{name}={value!r} is not a boolean", hint="use true or false")
            options[key] = word in _TRUE
        else:
            options[key] = value
    if scheme == "s3":
        options.pop("allow_http", None)  # decided with the endpoint (aws_environment)
    return options
