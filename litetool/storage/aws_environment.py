"""Where an ``s3://`` replica's endpoint, region and credentials come from.

obstore reads the standard ``AWS_*`` variables itself, but not all of them,
and not in a way that composes with litetool's own options (obstore 0.12):

- the client options litetool passes (timeouts) replace the ones obstore
  read from the environment, so ``AWS_ALLOW_HTTP=true`` was lost and every
  request to an ``http://`` ``AWS_ENDPOINT_URL`` failed with
  ``HTTP error: builder error``;
- ``AWS_ENDPOINT_URL_S3`` from the environment beat an endpoint given in the
  config file, and ``AWS_SESSION_TOKEN`` from the environment was paired
  with keys given in the config file (403 InvalidAccessKeyId);
- ``AWS_PROFILE`` and the shared credentials and config files are not read;
- ``AWS_EC2_METADATA_DISABLED`` is not honoured: without credentials, each
  request first asks the instance metadata endpoint (169.254.169.254, off
  the machine) for some, and fails with its answer.

So litetool resolves these here, in the order the AWS CLI and SDKs use, and
``obstore_store.build_store`` passes every value explicitly (static keys through
a credential provider, so no variable can be paired with them)::

    endpoint     option endpoint > AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > AWS_ENDPOINT
                 > endpoint_url of the profile                      (none: AWS itself)
    plain http   allowed towards an http:// endpoint (naming it is the consent);
                 allow_http=false or AWS_ALLOW_HTTP=false with one is a ConfigError
    region       option region > AWS_REGION > AWS_DEFAULT_REGION > region of the profile
                                                                    (none: us-east-1)
    credentials  option access_key_id + secret_access_key (+ session_token)
                 > AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
                 > the profile (AWS_PROFILE, else "default"): AWS_SHARED_CREDENTIALS_FILE
                   (~/.aws/credentials), then AWS_CONFIG_FILE (~/.aws/config)
                 > what obstore fetches itself: web identity (AWS_WEB_IDENTITY_TOKEN_FILE
                   with AWS_ROLE_ARN), container credentials
                   (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), or none at
                   all with AWS_SKIP_SIGNATURE=true (public buckets)
                 > instance metadata (EC2), unless AWS_EC2_METADATA_DISABLED=true
                 > nothing: ConfigError "no S3 credentials found (...)", before any request

A profile gives static keys only (``aws_access_key_id``,
``aws_secret_access_key``, ``aws_session_token``); one that gets its
credentials another way (``role_arn``, ``credential_process``, SSO) is a
ConfigError saying so. No message here contains a secret.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from litetool.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
_REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Profile keys that get credentials in ways litetool does not follow.
_OTHER_CREDENTIAL_KEYS = (
    "role_arn",
    "credential_process",
    "credential_source",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
)
NO_CREDENTIALS = "no S3 credentials found"
CREDENTIAL_CHOICES = (
    "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared "
    "credentials file, or access-key-id/secret-access-key in the config file"
)


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """Access key, secret and optional session token (repr never shows the secrets)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def secret_values(self) -> list[str]:
        return [value for value in (self.secret_access_key, self.session_token) if value]


@dataclass(frozen=True, slots=True)
class S3Settings:
    """What an S3 store is built with. ``sources`` says where each setting came
    from, in words (for logs and messages: never a secret)."""

    endpoint: str | None
    region: str | None
    allow_http: bool
    credentials: StaticCredentials | None  # None: obstore's own sources (see module doc)
    sources: Mapping[str, str]

    def obstore_config(self) -> dict[str, Any]:
        """The endpoint and region as obstore config keys (no secrets)."""
        config: dict[str, Any] = {}
        if self.endpoint is not None:
            # AWS_ENDPOINT_URL_S3 in the environment would beat "endpoint".
            config["endpoint"] = config["aws_endpoint_url_s3"] = self.endpoint
        if self.region is not None:
            config["region"] = self.region
        return config

    def secret_values(self) -> list[str]:
        return self.credentials.secret_values() if self.credentials is not None else []

    def describe(self) -> dict[str, str]:
        """Non-secret facts for the log: endpoint, region, where credentials come from."""
        facts = {"credentials": self.sources["credentials"]}
        if self.endpoint is not None:
            facts["endpoint"] = f"{self.endpoint} ({self.sources['endpoint']})"
        if self.region is not None:
            facts["region"] = f"{self.region} ({self.sources['region']})"
        return facts


def resolve_s3_settings(
    options: Mapping[str, Any],
    secrets: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    home: str | None = None,
) -> S3Settings:
    """Resolve endpoint, region and credentials of an S3 replica (see the module
    docstring). *options*/*secrets* are the replica's (config file and URL);
    *environ* is the process environment; *home* replaces ``~`` (tests)."""
    env = _Environment(environ, home)
    profile = _LazyProfile(env)
    sources: dict[str, str] = {}

    endpoint = options.get("endpoint")
    if endpoint is not None:
        sources["endpoint"] = "option endpoint"
    else:
        for variable in _ENDPOINT_VARIABLES:
            if env.get(variable):
                endpoint = _check_endpoint(variable, env.get(variable))
                sources["endpoint"] = variable
                break
        else:
            value = profile.get("endpoint_url")
            if value:
                endpoint = _check_endpoint(f"endpoint_url of {profile.where}", value)
                sources["endpoint"] = profile.where

    allow_http = _allow_http(options, env, endpoint, sources.get("endpoint"))

    region = options.get("region")
    if region is not None:
        sources["region"] = "option region"
    else:
        for variable in _REGION_VARIABLES:
            if env.get(variable):
                region, sources["region"] = env.get(variable), variable
                break
        else:
            region = profile.get("region") or None
            if region:
                sources["region"] = profile.where

    credentials = _credentials(secrets, options, env, profile, sources)
    return S3Settings(endpoint, region, allow_http, credentials, sources)


# -- the parts ------------------------------------------------------------------------------


class _Environment:
    def __init__(self, environ: Mapping[str, str], home: str | None) -> None:
        self._environ = environ
        self.home = home

    def get(self, name: str) -> str:
        """The variable's value; unset and empty are the same."""
        return self._environ.get(name, "").strip()

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if not value:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def path(self, variable: str, default: str) -> str:
        path = self.get(variable) or default
        if path.startswith("~") and self.home is not None:
            return self.home + path[1:]
        return os.path.expanduser(path)


def _check_endpoint(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        # It may hold a secret: never echo it.
        raise ConfigError(f"{name} must be a URL without credentials, query or fragment")
    return value


def _allow_http(
    options: Mapping[str, Any], env: _Environment, endpoint: str | None, source: str | None
) -> bool:
    is_http = endpoint is not None and endpoint.lower().startswith("http://")
    option = options.get("allow_http")
    if option is True and not is_http:
        raise ConfigError(
            "allow_http needs an http:// endpoint",
            hint="give endpoint=http://host:port (or set AWS_ENDPOINT_URL)",
        )
    if not is_http:
        return False
    if option is False:
        raise ConfigError(f"endpoint {endpoint} ({source}) is plain http but allow_http is false")
    if option is None and source != "option endpoint" and env.flag("AWS_ALLOW_HTTP") is False:
        raise ConfigError(
            f"endpoint {endpoint} ({source}) is plain http but AWS_ALLOW_HTTP is false",
            hint="set AWS_ALLOW_HTTP=true, or give an https:// endpoint",
        )
    return True


class _LazyProfile:
    """The AWS profile's settings, read from the shared files only when needed."""

    def __init__(self, env: _Environment) -> None:
        self.env = env
        self.explicit = bool(env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE"))
        self.name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
        self.where = f"profile {self.name}"
        self._values: dict[str, tuple[str, str]] | None = None

    def get(self, key: str) -> str:
        return self.values().get(key, ("", ""))[0]

    def file_of(self, key: str) -> str:
        return self.values().get(key, ("", ""))[1]

    def values(self) -> dict[str, tuple[str, str]]:
        """key -> (value, file); the credentials file wins over the config file."""
        if self._values is not None:
            return self._values
        credentials_file = self.env.path("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
        config_file = self.env.path("AWS_CONFIG_FILE", "~/.aws/config")
        found = False
        values: dict[str, tuple[str, str]] = {}
        config_sections = [f"profile {self.name}"] + (["default"] if self.name == "default" else [])
        for path, sections in ((config_file, config_sections), (credentials_file, [self.name])):
            parser = _read_ini(path)
            if parser is None:
                continue
            for section in sections:
                if parser.has_section(section):
                    found = True
                    for key, value in parser.items(section):
                        values[key.lower()] = (value.strip(), path)
                    break
        if not found and self.explicit:
            raise ConfigError(
                f"AWS profile {self.name!r} not found in {credentials_file} or {config_file}",
                hint="check AWS_PROFILE, or AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE",
            )
        self._values = values
        return values


def _read_ini(path: str) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(
        strict=False, default_section="litetool-no-default-section"
    )
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        # configparser quotes the offending line, which may hold a secret.
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ConfigError(f"cannot parse {path}{where}: not an AWS config file") from None
    return parser


def _credentials(
    secrets: Mapping[str, str],
    options: Mapping[str, Any],
    env: _Environment,
    profile: _LazyProfile,
    sources: dict[str, str],
) -> StaticCredentials | None:
    key_id = secrets.get("access_key_id", options.get("access_key_id"))
    secret = secrets.get("secret_access_key")
    if key_id is not None or secret is not None:
        if key_id is None or secret is None:
            missing = "access_key_id" if key_id is None else "secret_access_key"
            raise ConfigError(f"option {missing} is missing (the options give only half a key)")
        sources["credentials"] = "options"
        return StaticCredentials(key_id, secret, secrets.get("session_token"))
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key_id or secret:
        if not (key_id and secret):
            present, missing = (
                ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if key_id
                else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
            )
            raise ConfigError(f"{present} is set but {missing} is not")
        sources["credentials"] = "AWS_ACCESS_KEY_ID"
        token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
        return StaticCredentials(key_id, secret, token)
    key_id, secret = profile.get("aws_access_key_id"), profile.get("aws_secret_access_key")
    if key_id or secret:
        where = profile.file_of("aws_access_key_id") or profile.file_of("aws_secret_access_key")
        if not (key_id and secret):
            missing = "aws_secret_access_key" if key_id else "aws_access_key_id"
            raise ConfigError(f"{profile.where} in {where} has no {missing}")
        sources["credentials"] = f"{profile.where} ({where})"
        token = profile.get("aws_session_token") or profile.get("aws_security_token") or None
        return StaticCredentials(key_id, secret, token)
    other = [key for key in _OTHER_CREDENTIAL_KEYS if profile.get(key)]
    if other:
        raise ConfigError(
            f"{profile.where} gets its credentials with {other[0]}, which litetool does "
            "not follow (it reads static keys: aws_access_key_id, aws_secret_access_key, "
            "aws_session_token)",
            hint=f"export them with `aws configure export-credentials --profile {profile.name} "
            "--format env`",
        )
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        sources["credentials"] = "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
    elif env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        sources["credentials"] = "container credentials (AWS_CONTAINER_CREDENTIALS_*)"
    elif env.flag("AWS_SKIP_SIGNATURE"):
        sources["credentials"] = "none: unsigned requests (AWS_SKIP_SIGNATURE)"
    elif not env.flag("AWS_EC2_METADATA_DISABLED"):
        sources["credentials"] = "instance metadata"
    else:
        raise ConfigError(
            f"{NO_CREDENTIALS} ({CREDENTIAL_CHOICES})",
            hint="instance metadata is not asked, as AWS_EC2_METADATA_DISABLED=true says",
        )
    return None
