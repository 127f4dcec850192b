"""Client settings from a store's environment variables (``storage.client_env``)."""

from __future__ import annotations

import pytest

from litetool.errors import ConfigError
from litetool.storage.client_env import client_options_from_env


def test_each_scheme_reads_its_own_prefix():
    environ = {
        "AWS_PROXY_URL": "http://127.0.0.1:3128",
        "AZURE_ALLOW_INVALID_CERTIFICATES": "true",
        "GOOGLE_HTTP1_ONLY": "0",
        "AZURE_ALLOW_HTTP": "yes",
    }
    assert client_options_from_env("s3", environ) == {"proxy_url": "http://127.0.0.1:3128"}
    assert client_options_from_env("az", environ) == {
        "allow_http": True,
        "allow_invalid_certificates": True,
    }
    assert client_options_from_env("gs", environ) == {"http1_only": False}
    assert client_options_from_env("file", environ) == {}


def test_s3_allow_http_is_left_to_the_endpoint_resolution():
    assert client_options_from_env("s3", {"AWS_ALLOW_HTTP": "true"}) == {}


def test_empty_variables_are_unset():
    assert client_options_from_env("az", {"AZURE_PROXY_URL": "", "AZURE_ALLOW_HTTP": ""}) == {}


def test_a_boolean_that_is_not_one_names_the_variable():
    with pytest.raises(ConfigError, match="AZURE_ALLOW_HTTP='maybe' is not a boolean"):
        client_options_from_env("az", {"AZURE_ALLOW_HTTP": "maybe"})
