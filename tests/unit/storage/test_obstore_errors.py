"""obstore exceptions -> litetool errors, with real errors from real stores and sockets."""

import http.server
import socket
import threading
import time

import pytest

from litetool.errors import (
    ObjectNotFound,
    StorageError,
    StorageMisconfigured,
    StorageThrottled,
    StorageUnavailable,
)
from litetool.storage import parse_location
from litetool.storage.counting_store import CountingStore
from litetool.storage.obstore_errors import scrub
from litetool.storage.obstore_store import open_store
from litetool.storage.store import ALREADY_EXISTS, PRECONDITION_FAILED, WriteTag, list_objects

SECRET = "s3cr3t-Value-That-Must-Not-Leak"


def _store(url, options=None):
    return CountingStore(open_store(parse_location(url, options)))


async def _listed(store, prefix):
    return [meta async for meta in list_objects(store, prefix)]


async def test_missing_object_is_object_not_found(tmp_path):
    for store in (_store("memory://errors-missing"), _store(str(tmp_path))):
        with pytest.raises(ObjectNotFound) as info:
            await store.get("objects/nope", max_bytes=10)
        assert info.value.key == "objects/nope"
        assert isinstance(info.value.__cause__, FileNotFoundError)
        assert store.stats.snapshot()["get"].failures == 1


async def test_expected_conditional_outcomes_pass_through():
    store = _store("memory://errors-conditional")
    tag = await store.put("k", b"1")
    with pytest.raises(ALREADY_EXISTS):
        await store.put("k", b"2", mode="create", expected=(ALREADY_EXISTS,))
    with pytest.raises(PRECONDITION_FAILED):
        await store.put("k", b"2", mode=WriteTag('"stale"', None), expected=(PRECONDITION_FAILED,))
    await store.put("k", b"3", mode=tag)
    assert store.stats.snapshot()["put"].failures == 0


async def test_unexpected_conditional_outcome_is_a_storage_error():
    store = _store("memory://errors-unexpected")
    await store.put("k", b"1")
    with pytest.raises(StorageError) as info:
        await store.put("k", b"2", mode="create")
    assert type(info.value) is StorageError
    assert "put k on memory://errors-unexpected" in info.value.message
    assert "\n" not in info.value.message and "Debug source" not in info.value.message


async def test_unsupported_operation_on_a_local_directory(tmp_path):
    store = _store(str(tmp_path))
    await store.put("k", b"1")
    with pytest.raises(StorageError, match="not supported by this store"):
        await store.put("k", b"2", mode=WriteTag('"x"', None))


async def test_unreachable_endpoint_is_storage_unavailable_and_fast():
    store = _store(
        "s3://bucket/p",
        {
            "endpoint": "http://127.0.0.1:1",
            "max_retries": 0,
            "region": "us-east-1",
            "access_key_id": "AKID",
            "secret_access_key": SECRET,
        },
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        await store.get("objects/x", max_bytes=10)
    assert time.monotonic() - started < 5
    assert info.value.retryable
    assert "get objects/x on s3://bucket/p" in info.value.message
    assert SECRET not in info.value.message and SECRET not in str(info.value.__cause__)


async def test_silent_server_times_out_as_storage_unavailable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    store = _store(
        "s3://bucket",
        {
            "endpoint": f"http://127.0.0.1:{listener.getsockname()[1]}",
            "max_retries": 0,
            "timeout_seconds": 1,
            "region": "us-east-1",
            "access_key_id": "a",
            "secret_access_key": "b",
        },
    )
    try:
        with pytest.raises(StorageUnavailable, match="unreachable"):
            await store.head("lease.json")
    finally:
        listener.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 503
    code = "X"

    def _reply(self):
        body = f"<Error><Code>{self.code}</Code><Message>key {SECRET}</Message></Error>".encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._reply()

    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_status():
    servers = []

    def start(status, code="X"):
        handler = type("Handler", (_Handler,), {"status": status, "code": code})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _s3(endpoint):
    return _store(
        "s3://bucket",
        {
            "endpoint": endpoint,
            "max_retries": 0,
            "region": "us-east-1",
            "access_key_id": "AKID",
            "secret_access_key": SECRET,
        },
    )


async def test_server_error_is_storage_unavailable(http_status):
    with pytest.raises(StorageUnavailable) as info:
        await _s3(http_status(503)).get("k", max_bytes=10)
    assert SECRET not in info.value.message
    assert "the store failed the request (HTTP 503 X)" in info.value.message
    with pytest.raises(StorageUnavailable, match=r"failed the request \(HTTP 500 InternalError\)"):
        await _s3(http_status(500, "InternalError")).put("k", b"x")


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (503, "ServerBusy"), (429, "X")])
async def test_throttling_is_retryable_and_says_so(http_status, status, code):
    with pytest.raises(StorageThrottled) as info:
        await _s3(http_status(status, code)).put("k", b"x")
    assert info.value.retryable
    assert "the store is throttling requests" in info.value.message
    assert f"HTTP {status}" in info.value.message and "unreachable" not in info.value.message
    assert "fewer requests" in info.value.hint


async def test_refused_connection_says_why():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(StorageUnavailable, match="store unreachable: connection refused"):
        await _s3(f"http://127.0.0.1:{port}").get("k", max_bytes=10)


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (404, "NoSuchBucket", "the bucket bucket does not exist (NoSuchBucket)"),
        (404, "ContainerNotFound", "the container bucket does not exist (ContainerNotFound)"),
        (403, "SignatureDoesNotMatch", "permission denied (HTTP 403 SignatureDoesNotMatch)"),
        (401, "X", "permission denied (HTTP 401 X)"),
        (400, "AuthorizationHeaderMalformed", "wrong region for bucket bucket"),
        (301, "PermanentRedirect", "wrong region for bucket bucket"),
        (400, "InvalidBucketName", "invalid bucket or container name bucket"),
    ],
)
async def test_answers_no_retry_changes_are_misconfigured(http_status, status, code, words):
    """GET and PUT raise obstore's typed errors, a listing a GenericError: the same
    classification for all three, and never ObjectNotFound for a missing bucket."""
    store = _s3(http_status(status, code))
    for attempt in (
        lambda: store.get("k", max_bytes=10),
        lambda: store.put("k", b"x"),
        lambda: _listed(store, "p/"),
    ):
        with pytest.raises(StorageMisconfigured) as info:
            await attempt()
        assert info.value.retryable is False
        assert words in info.value.message, info.value.message
        assert SECRET not in info.value.message


async def test_a_missing_object_in_an_existing_bucket_is_still_object_not_found(http_status):
    with pytest.raises(ObjectNotFound):
        await _s3(http_status(404, "NoSuchKey")).get("k", max_bytes=10)


async def test_permission_denied_has_a_hint_and_no_secret(http_status):
    with pytest.raises(StorageMisconfigured) as info:
        await _s3(http_status(403)).put("k", b"data")
    assert info.value.retryable is False
    assert "permission denied (HTTP 403 X)" in info.value.message
    assert "credentials" in info.value.hint
    assert SECRET not in info.value.message
    assert "***" in info.value.message  # the server echoed the secret; it was scrubbed
    assert SECRET not in str(info.value.__cause__)


def test_scrub_keeps_one_safe_line():
    text = (
        f"Generic error: PUT https://acct.blob.core.windows.net/c/k?sv=2022&sig={SECRET} failed\n"
        '\nDebug source:\nGeneric { secret: "x" }'
    )
    cleaned = scrub(text, [])
    assert SECRET not in cleaned and "sig=" not in cleaned
    assert "Debug source" not in cleaned
    assert cleaned.startswith("Generic error: PUT https://acct.blob.core.windows.net/c/k?...")
    assert scrub(f"token {SECRET}", [SECRET]) == "token ***"
    assert len(scrub("x" * 10_000, [])) <= 400
