"""Properties of the location parser: round trips, rejection, redaction."""

import string
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from litetool.errors import ConfigError
from litetool.storage import parse_location

segment_chars = string.ascii_letters + string.digits + "._-"
segments = st.text(segment_chars, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
prefixes = st.lists(segments, max_size=4).map("/".join)
buckets = st.text(string.ascii_lowercase + string.digits, min_size=3, max_size=20)
hosts = st.sampled_from(["127.0.0.1:9000", "localhost:10000", "minio.internal", "s3.example.com"])


@st.composite
def urls(draw):
    scheme = draw(st.sampled_from(["s3", "gs", "gcs", "az", "abs", "memory"]))
    options = {}
    if scheme not in ("memory",):
        if draw(st.booleans()):
            options["endpoint"] = draw(st.sampled_from(["http", "https"])) + "://" + draw(hosts)
        if draw(st.booleans()):
            options["max_retries"] = draw(st.integers(0, 10))
        if draw(st.booleans()):
            options["timeout_seconds"] = draw(st.sampled_from([1, 2.5, 30, 600]))
    if scheme == "s3" and draw(st.booleans()):
        options["region"] = draw(st.sampled_from(["us-east-1", "eu-west-3"]))
    return scheme, draw(buckets), draw(prefixes), options


@given(urls(), st.booleans())
def test_round_trip_through_display_url(case, options_in_query):
    scheme, bucket, prefix, options = case
    url = f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"
    if options_in_query:
        query = urlencode({name: str(value) for name, value in options.items()})
        location = parse_location(f"{url}?{query}" if query else url)
    else:
        location = parse_location(url, options)
    assert (location.root, location.prefix) == (bucket, prefix)
    assert dict(location.options) == options
    assert parse_location(location.display_url) == location


secrets = st.text(string.ascii_letters + string.digits + "+/=", min_size=16, max_size=40).map(
    lambda s: "SECRET" + s
)


@given(urls(), secrets)
def test_secrets_never_leak_into_text(case, secret):
    scheme, bucket, prefix, options = case
    secret_option = {
        "s3": "secret_access_key",
        "gs": "bearer_token",
        "gcs": "bearer_token",
        "az": "account_key",
        "abs": "account_key",
    }.get(scheme)
    if secret_option is None:
        return
    location = parse_location(f"{scheme}://{bucket}/{prefix}", {**options, secret_option: secret})
    assert location.secrets[secret_option] == secret
    for rendered in (repr(location), str(location), location.display_url):
        assert secret not in rendered
    try:
        parse_location(f"{scheme}://{bucket}?{secret_option}={secret}")
        raise AssertionError("a secret was accepted in the URL")
    except ConfigError as exc:
        assert secret not in exc.message


@given(st.text(max_size=60))
def test_arbitrary_urls_parse_or_raise_config_error(text):
    try:
        location = parse_location(text)
    except ConfigError:
        return
    assert location.scheme in ("file", "s3", "gs", "az", "memory")
    if location.scheme != "file":
        assert parse_location(location.display_url) == location


@given(
    st.sampled_from(["s3", "gs", "az", "memory"]),
    buckets,
    st.text(string.printable + "é/", max_size=30),
)
def test_prefixes_with_odd_characters_are_rejected_or_canonical(scheme, bucket, path):
    try:
        location = parse_location(f"{scheme}://{bucket}/{path}")
    except ConfigError:
        return
    assert all(
        part and part not in (".", "..") for part in location.prefix.split("/") if location.prefix
    )
    assert set(location.prefix) <= set(segment_chars + "/")
