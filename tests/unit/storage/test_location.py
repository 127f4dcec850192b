"""Replica location parsing, store construction and secret redaction."""

import os

import pytest

from litetool.errors import ConfigError, ObjectNotFound
from litetool.storage import parse_location
from litetool.storage.obstore_store import (
    _client_options,
    _retry_config,
    _store_config,
    build_store,
)

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def test_plain_paths_become_absolute_file_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = parse_location("backups/app")
    assert location.scheme == "file"
    assert location.root == str(tmp_path / "backups" / "app")
    assert parse_location(str(tmp_path)).root == str(tmp_path)
    assert parse_location(f"file://{tmp_path}/x/../y").root == str(tmp_path / "y")
    assert parse_location("file:///a%20b").root == "/a b"
    assert parse_location("file:///a%20b").display_url == "file:///a%20b"
    assert parse_location("file://localhost/srv").root == "/srv"


def test_s3_bucket_prefix_and_query_options():
    location = parse_location(
        "s3://my-bucket/app/db1/?endpoint=http://127.0.0.1:9000&region=us-east-1&max_retries=0"
    )
    assert (location.scheme, location.root, location.prefix) == ("s3", "my-bucket", "app/db1")
    assert location.options == {
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "max_retries": 0,
    }
    assert location.display_url == (
        "s3://my-bucket/app/db1?endpoint=http%3A%2F%2F127.0.0.1%3A9000&max_retries=0"
        "&region=us-east-1"
    )
    assert parse_location(location.display_url) == location


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("gs://b/p", "gs"),
        ("gcs://b/p", "gs"),
        ("az://c/p", "az"),
        ("abs://c/p", "az"),
        ("memory://name/p", "memory"),
        ("S3://b", "s3"),
    ],
)
def test_scheme_aliases(url, scheme):
    assert parse_location(url).scheme == scheme


def test_options_dict_carries_secrets_and_types():
    location = parse_location(
        "s3://b",
        {
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": SECRET,
            "virtual_hosted_style": "true",
            "timeout_seconds": 2.5,
            "connect_timeout_seconds": "1",
        },
    )
    assert location.secrets == {"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET}
    assert location.options == {
        "virtual_hosted_style": True,
        "timeout_seconds": 2.5,
        "connect_timeout_seconds": 1,
    }


def test_secrets_never_show_in_repr_str_or_display_url():
    location = parse_location(
        "s3://b/p",
        {"secret_access_key": SECRET, "session_token": SECRET + "T", "region": "eu-west-1"},
    )
    for text in (repr(location), str(location), location.display_url, f"{location!r}"):
        assert SECRET not in text
    assert "secret_access_key" in repr(location)  # says which secrets are set, not their values


def test_a_secret_in_a_bad_value_error_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        parse_location("s3://b", {"secret_access_key": 12345})
    assert "12345" not in info.value.message and "redacted" in info.value.message


@pytest.mark.parametrize(
    "url",
    [
        "s3://b/p?secret_access_key=" + SECRET,
        "s3://b/p?access_key_id=AKID",
        "az://c?account_key=" + SECRET,
        "gs://b?bearer_token=" + SECRET,
    ],
)
def test_secrets_are_refused_in_the_url(url):
    with pytest.raises(ConfigError) as info:
        parse_location(url)
    assert SECRET not in info.value.message
    assert "not accepted in the URL" in info.value.message


def test_userinfo_is_refused():
    with pytest.raises(ConfigError) as info:
        parse_location(f"s3://AKID:{SECRET}@bucket/p")
    assert SECRET not in info.value.message


@pytest.mark.parametrize(
    "url, options, match",
    [
        ("s3://b?colour=blue", None, "unknown option colour"),
        ("s3://b", {"account_name": "x"}, "unknown option account_name for s3"),
        ("/tmp/x", {"region": "x"}, "unknown option region for local"),
        ("file:///tmp/x", {"region": "x"}, "unknown option region"),
        ("memory://m", {"endpoint": "http://x"}, "unknown option endpoint for memory"),
        ("s3://b?region=a&region=b", None, "given twice"),
        ("s3://b?region=a", {"region": "b"}, "both in the URL and in the options"),
        ("s3://b", {"max_retries": -1}, "max_retries must be"),
        ("s3://b", {"max_retries": True}, "max_retries must be"),
        ("s3://b", {"timeout_seconds": 0}, "timeout_seconds must be"),
        ("s3://b", {"timeout_seconds": "soon"}, "timeout_seconds must be"),
        ("s3://b", {"allow_http": "perhaps"}, "allow_http must be"),
        ("s3://b", {"endpoint": "ftp://x"}, "endpoint must be"),
        ("s3://b", {"endpoint": "http://u:p@x"}, "without credentials"),
        ("gs://b", {"allow_http": True}, "needs an explicit http:// endpoint"),
        ("az://c", {"allow_http": True, "endpoint": "https://x"}, "needs an explicit http://"),
        ("s3://b", {"allow_http": False, "endpoint": "http://x"}, "allow_http is false"),
        ("az://c", {"use_emulator": True, "endpoint": "http://x"}, "ignores endpoint"),
        ("ftp://b", None, "unsupported replica URL scheme"),
        ("s3://", None, "invalid bucket"),
        ("s3://b:9000/p", None, "invalid bucket"),
        ("s3://../p", None, "invalid bucket"),
        ("s3://b/a//c", None, "invalid key prefix"),
        ("s3://b/a/../c", None, "invalid key prefix"),
        ("s3://b/a b", None, "invalid key prefix"),
        ("s3://b/é", None, "invalid key prefix"),
        ("s3://b#frag", None, "fragment"),
        ("s3://b?x", None, "malformed query"),
        ("file://host/x", None, "file:///absolute"),
        ("", None, "invalid replica location"),
        (" s3://b", None, "invalid replica location"),
        ("s3://b/\x00", None, "invalid replica location"),
    ],
)
def test_invalid_locations(url, options, match):
    with pytest.raises(ConfigError, match=match):
        parse_location(url, options)


def test_http_endpoint_implies_allow_http_and_bounded_retries():
    location = parse_location("s3://b/p", {"endpoint": "http://127.0.0.1:9000"})
    assert _client_options(location)["allow_http"] is True
    retry = _retry_config(location)
    assert retry["max_retries"] == 3
    assert retry["retry_timeout"].total_seconds() == 20
    client = _client_options(parse_location("s3://b", {"timeout_seconds": 7}))
    assert client["timeout"].total_seconds() == 7
    assert client["connect_timeout"].total_seconds() == 5
    assert "allow_http" not in client


@pytest.mark.parametrize("endpoint", [None, "https://x"])
def test_s3_allow_http_without_an_http_endpoint_fails_when_the_store_is_built(endpoint):
    # An S3 endpoint may come from AWS_ENDPOINT_URL: the URL alone cannot tell.
    options = {"allow_http": True, "access_key_id": "a", "secret_access_key": "b"}
    if endpoint:
        options["endpoint"] = endpoint
    location = parse_location("s3://b", options)
    with pytest.raises(ConfigError, match="allow_http needs an http:// endpoint"):
        build_store(location)


def test_store_config_uses_obstore_names():
    s3 = parse_location("s3://b", {"virtual_hosted_style": True, "secret_access_key": "k"})
    assert _store_config(s3) == {"virtual_hosted_style_request": True, "secret_access_key": "k"}
    gs = parse_location("gs://b", {"service_account_path": "/sa.json", "endpoint": "https://g"})
    assert _store_config(gs) == {"service_account": "/sa.json", "base_url": "https://g"}
    az = parse_location("az://c", {"sas_token": "sig", "bearer_token": "t", "use_emulator": True})
    assert _store_config(az) == {"sas_key": "sig", "token": "t", "use_emulator": True}


def test_s3_store_configuration_is_built_without_network():
    store = build_store(
        parse_location(
            "s3://bucket/pre/fix",
            {
                "endpoint": "http://127.0.0.1:1",
                "region": "us-east-1",
                "secret_access_key": SECRET,
                "access_key_id": "AKID",
            },
        )
    )
    assert store.prefix == "pre/fix"
    assert store.config["endpoint"] == "http://127.0.0.1:1"
    assert store.client_options["allow_http"] in (True, "true")
    assert store.retry_config["max_retries"] == 3
    assert SECRET not in repr(store)


def test_gcs_store_configuration_without_network(tmp_path):
    # Construct only: a GCS call would leave loopback (and there is no emulator that works).
    store = build_store(
        parse_location("gs://my-bucket/backups", {"bearer_token": SECRET, "timeout_seconds": 3})
    )
    assert store.prefix == "backups"
    assert store.config["bucket"] == "my-bucket"
    assert store.config["bearer_token"] == SECRET
    assert SECRET not in repr(store)
    account = tmp_path / "sa.json"
    account.write_text(
        '{"gcs_base_url": "http://127.0.0.1:1", "disable_oauth": true, '
        '"client_email": "", "private_key": "", "private_key_id": ""}'
    )
    store = build_store(parse_location("gcs://b", {"service_account_path": str(account)}))
    assert store.config["service_account"] == str(account)


def test_azure_store_configuration_without_network():
    store = build_store(parse_location("az://container/p", {"use_emulator": True}))
    assert store.prefix == "p"


def test_bad_store_configuration_is_a_config_error_without_the_secret():
    with pytest.raises(ConfigError) as info:
        build_store(parse_location("az://c", {"account_name": "a", "account_key": SECRET + "!"}))
    assert SECRET not in info.value.message
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)


def test_local_store_is_created_only_when_asked(tmp_path):
    location = parse_location(str(tmp_path / "new"))
    with pytest.raises(ObjectNotFound, match=r"litetool-replica\.json"):
        build_store(location)
    assert not (tmp_path / "new").exists()
    build_store(location, create=True)
    assert os.path.isdir(tmp_path / "new")
    build_store(location)


def test_memory_stores_are_shared_by_name():
    first = build_store(parse_location("memory://shared-test/p"))
    first.put("k", b"v")
    assert bytes(build_store(parse_location("memory://shared-test/p")).get("k").bytes()) == b"v"
    assert build_store(parse_location("memory://shared-test/other")) is not first


@pytest.mark.parametrize(
    ("typo", "hint"),
    [
        ("s3:/bucket/app", "did you mean s3://bucket/app?"),
        ("s3:bucket", "did you mean s3://bucket?"),
        ("gs:/b/p", "did you mean gs://b/p?"),
        ("foo:bar", "write it as ./foo:bar"),
        ("C:backups", "write it as ./C:backups"),
    ],
)
def test_a_scheme_with_a_typo_is_an_error_not_a_directory(typo, hint):
    with pytest.raises(ConfigError) as caught:
        parse_location(typo)
    assert hint in caught.value.render()


def test_a_path_is_only_a_path():
    assert parse_location("./foo:bar").root.endswith("/foo:bar")
    assert parse_location("/srv/x:y/backups").root == "/srv/x:y/backups"
    assert parse_location("backups/app").scheme == "file"
