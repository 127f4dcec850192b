"""S3-compatible stores configured the way every AWS tool is: by the standard
environment (AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, AWS_REGION, AWS_PROFILE and the
shared files), against real servers on 127.0.0.1 (moto; SeaweedFS where the
credentials must be right). The replica URL carries no option at all.

The suite runs with AWS_EC2_METADATA_DISABLED=true (tests/conftest.py); the
tests that need instance metadata point AWS_METADATA_ENDPOINT at a loopback
server of their own, so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import http.server
import threading

import pytest
from servers import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, unique_name

from litetool.errors import ConfigError, StorageMisconfigured, StorageUnavailable
from litetool.storage import Replica
from litetool.storage.store import list_objects

pytestmark = pytest.mark.servers

REFUSED = "http://127.0.0.1:1"  # nothing listens there


@pytest.fixture
def aws_env(monkeypatch):
    """Set AWS_* variables for this test (the suite's hermetic ones stay otherwise)."""

    def set_env(**values):
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_env


def keys():
    return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY}


def bucket_url(server) -> str:
    return f"s3://{server.create_bucket()}/{unique_name('p')}"


async def round_trip(url: str, options: dict | None = None) -> Replica:
    """Create the replica's marker, read it back, list it: three kinds of request."""
    replica = Replica.open(url, options)
    assert await replica.ensure_format(create=True) == 1
    assert await replica.ensure_format(create=False) == 1
    assert [meta.key async for meta in list_objects(replica.store, "")] == ["litetool-replica.json"]
    return replica


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with 403 and remembers it (method, path, headers)."""

    requests: list

    def _answer(self):
        self.requests.append(
            (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    """A loopback HTTP server that refuses everything and records what it got."""
    handler = type("Recorder", (_Recorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.requests = handler.requests
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


# -- endpoint and plain http -----------------------------------------------------------------


async def test_aws_endpoint_url_with_aws_allow_http_reaches_the_store(moto_server, aws_env):
    # Before: "HTTP error: builder error (hint: ... or AWS_ALLOW_HTTP=true)".
    aws_env(**keys(), AWS_ENDPOINT_URL=moto_server.endpoint, AWS_ALLOW_HTTP="true")
    aws_env(AWS_REGION=S3_REGION)
    replica = await round_trip(bucket_url(moto_server))
    assert replica.facts["endpoint"] == f"{moto_server.endpoint} (AWS_ENDPOINT_URL)"
    assert replica.facts["credentials"] == "AWS_ACCESS_KEY_ID"


async def test_an_http_aws_endpoint_url_needs_no_aws_allow_http(moto_server, aws_env):
    # Naming an http:// endpoint is the consent, as for the endpoint option.
    aws_env(**keys(), AWS_ENDPOINT_URL=moto_server.endpoint)
    await round_trip(bucket_url(moto_server))


async def test_aws_endpoint_url_s3_comes_before_aws_endpoint_url(moto_server, aws_env):
    aws_env(**keys(), AWS_ENDPOINT_URL_S3=moto_server.endpoint, AWS_ENDPOINT_URL=REFUSED)
    aws_env(AWS_ALLOW_HTTP="true")
    await round_trip(bucket_url(moto_server))


async def test_the_endpoint_option_comes_before_aws_endpoint_url_s3(moto_server, aws_env):
    # Before: obstore let the variable win over the config file's endpoint.
    aws_env(**keys(), AWS_ENDPOINT_URL_S3=REFUSED, AWS_ALLOW_HTTP="true")
    await round_trip(bucket_url(moto_server), {"endpoint": moto_server.endpoint})


async def test_aws_allow_http_false_with_an_http_endpoint_is_refused(aws_env):
    aws_env(**keys(), AWS_ENDPOINT_URL=REFUSED, AWS_ALLOW_HTTP="false")
    with pytest.raises(ConfigError, match="plain http but AWS_ALLOW_HTTP is false"):
        await Replica.open("s3://bucket/p").ensure_format(create=True)


async def test_an_endpoint_from_the_environment_that_is_down_is_an_outage(aws_env):
    aws_env(**keys(), AWS_ENDPOINT_URL=REFUSED)
    replica = Replica.open("s3://bucket/p", {"max_retries": 0})
    with pytest.raises(StorageUnavailable, match="connection refused"):
        await replica.ensure_format(create=True)


# -- region -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
async def test_the_region_variables_sign_the_requests(recorder, aws_env, variable):
    aws_env(**keys(), AWS_ENDPOINT_URL=recorder.url, **{variable: "eu-west-3"})
    with pytest.raises(StorageMisconfigured, match="permission denied"):
        await Replica.open("s3://bucket/p", {"max_retries": 0}).ensure_format(create=True)
    _, _, headers = recorder.requests[0]
    assert "/eu-west-3/s3/aws4_request" in headers["authorization"]


# -- credentials ------------------------------------------------------------------------------


async def test_keys_from_the_config_are_not_paired_with_aws_session_token(
    seaweedfs_server, aws_env
):
    # Before: obstore added the variable's token to the config file's keys (403).
    aws_env(AWS_SESSION_TOKEN="a-token-of-some-other-account")
    await round_trip(bucket_url(seaweedfs_server), seaweedfs_server.options)


async def test_wrong_keys_in_the_environment_are_refused_by_the_store(seaweedfs_server, aws_env):
    aws_env(AWS_ACCESS_KEY_ID=S3_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY="not-the-secret")
    aws_env(AWS_ENDPOINT_URL=seaweedfs_server.endpoint)
    with pytest.raises(StorageMisconfigured, match="permission denied") as info:
        await Replica.open(bucket_url(seaweedfs_server)).ensure_format(create=True)
    assert "not-the-secret" not in info.value.render()


async def test_aws_profile_from_the_shared_credentials_and_config_files(
    seaweedfs_server, aws_env, tmp_path
):
    # Before: obstore read neither file and asked instance metadata instead.
    credentials, config = tmp_path / "credentials", tmp_path / "config"
    credentials.write_text(
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
        f"[weed]\naws_access_key_id = {S3_ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {S3_SECRET_ACCESS_KEY}\n"
    )
    config.write_text(
        f"[profile weed]\nregion = {S3_REGION}\nendpoint_url = {seaweedfs_server.endpoint}\n"
    )
    aws_env(AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_CONFIG_FILE=str(config))
    aws_env(AWS_PROFILE="weed")
    replica = await round_trip(bucket_url(seaweedfs_server))
    assert replica.facts["credentials"] == f"profile weed ({credentials})"
    assert replica.facts["endpoint"] == f"{seaweedfs_server.endpoint} (profile weed)"
    # The default profile's wrong keys, when no profile is named.
    aws_env(AWS_PROFILE=None, AWS_ENDPOINT_URL=seaweedfs_server.endpoint)
    with pytest.raises(StorageMisconfigured, match="permission denied"):
        await Replica.open(bucket_url(seaweedfs_server)).ensure_format(create=True)


async def test_no_credentials_with_metadata_disabled_fails_before_any_request(recorder, aws_env):
    # Before: a PUT of /latest/api/token to the metadata endpoint, then its 403.
    aws_env(AWS_ENDPOINT_URL=recorder.url, AWS_METADATA_ENDPOINT=recorder.url)
    replica = Replica.open("s3://bucket/app")
    with pytest.raises(ConfigError) as info:
        replica.configure()
    assert info.value.message == (
        "s3://bucket/app: no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "or AWS_PROFILE with a shared credentials file, or access-key-id/secret-access-key "
        "in the config file)"
    )
    with pytest.raises(ConfigError, match="no S3 credentials found"):
        await replica.ensure_format(create=True)
    assert recorder.requests == []


async def test_no_credentials_from_instance_metadata_says_so(recorder, aws_env):
    # Metadata allowed (as on EC2), but it has none: before, "permission denied
    # (HTTP 403): ... http://169.254.169.254/latest/api/token" as if the bucket had refused.
    aws_env(AWS_EC2_METADATA_DISABLED=None, AWS_METADATA_ENDPOINT=recorder.url)
    aws_env(AWS_ENDPOINT_URL=REFUSED)
    replica = Replica.open("s3://bucket/app", {"max_retries": 0})
    replica.configure()
    assert replica.facts["credentials"] == "instance metadata"
    with pytest.raises(StorageMisconfigured) as info:
        await replica.ensure_format(create=True)
    assert "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in (
        info.value.message
    )
    assert f"the instance metadata endpoint {recorder.url} gave none (HTTP 403)" in (
        info.value.message
    )
    assert "AWS_EC2_METADATA_DISABLED=true" in info.value.hint
    assert [(method, path) for method, path, _ in recorder.requests] == [
        ("PUT", "/latest/api/token")
    ]


# -- client settings ---------------------------------------------------------------------------


async def test_aws_proxy_url_carries_every_request(recorder, aws_env):
    # Before: litetool's own client options (its timeouts) replaced the ones obstore
    # read from the environment, so AWS_PROXY_URL was ignored and the request went
    # to the endpoint itself (refused here).
    aws_env(**keys(), AWS_ENDPOINT_URL=REFUSED, AWS_REGION=S3_REGION, AWS_PROXY_URL=recorder.url)
    with pytest.raises(StorageMisconfigured, match="permission denied"):
        await Replica.open("s3://bucket/p", {"max_retries": 0}).ensure_format(create=True)
    _, target, _ = recorder.requests[0]
    assert target.startswith(f"{REFUSED}/bucket/"), target  # a proxy's absolute-form target
