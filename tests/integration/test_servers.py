"""Smoke tests: each object-store backend started by the suite works through obstore.

The stores are built here straight from each Backend's options dict (not through
litetool), so a failure points at the server fixture, not at litetool.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from obstore.exceptions import AlreadyExistsError
from obstore.store import AzureStore, LocalStore, MemoryStore, S3Store
from servers import LOOPBACK, Backend, unique_name

NO_RETRY = {"max_retries": 0}


def make_store(backend: Backend):
    """An obstore store for ``backend`` (a fresh MemoryStore for memory://)."""
    parts = urlsplit(backend.url)
    opts = backend.options
    prefix = parts.path.strip("/") or None
    if parts.scheme == "memory":
        return MemoryStore()
    if parts.scheme == "file":
        return LocalStore(Path(parts.path), mkdir=True)
    if parts.scheme == "s3":
        return S3Store(
            parts.netloc,
            prefix=prefix,
            endpoint=opts["endpoint"],
            access_key_id=opts["access_key_id"],
            secret_access_key=opts["secret_access_key"],
            region=opts["region"],
            client_options={"allow_http": opts["allow_http"], "timeout": "5s"},
            retry_config=NO_RETRY,
        )
    if parts.scheme == "az":
        return AzureStore(
            parts.netloc,
            prefix=prefix,
            account_name=opts["account_name"],
            account_key=opts["account_key"],
            endpoint=opts["endpoint"],
            client_options={"allow_http": opts["allow_http"], "timeout": "5s"},
            retry_config=NO_RETRY,
        )
    raise AssertionError(f"unexpected backend URL {backend.url}")


def test_basic_object_operations(object_store_backend: Backend) -> None:
    store = make_store(object_store_backend)
    key = f"{unique_name('k')}/segment.bin"
    payload = b"litetool\x00" * 100

    store.put(key, payload, mode="create")
    with pytest.raises(AlreadyExistsError):
        store.put(key, b"second writer", mode="create")
    assert store.get(key).bytes().to_bytes() == payload  # the first write survived

    store.put(f"{key}.2", b"x")
    listed = sorted(meta["path"] for meta in store.list().collect())
    assert listed == [key, f"{key}.2"]
    assert store.head(key)["size"] == len(payload)

    store.delete([key, f"{key}.2"])
    assert store.list().collect() == []
    with pytest.raises(FileNotFoundError):
        store.get(key)
    with pytest.raises(FileNotFoundError):
        store.head(f"{key}.2")


def test_backend_urls_and_options(object_store_backend: Backend) -> None:
    b = object_store_backend
    scheme = urlsplit(b.url).scheme
    assert scheme == {"memory": "memory", "local": "file", "azurite": "az"}.get(b.name, "s3")
    if scheme == "s3":
        assert set(b.options) == {
            "endpoint", "region", "access_key_id", "secret_access_key", "allow_http"
        }  # fmt: skip
    elif scheme == "az":
        assert set(b.options) == {"account_name", "account_key", "endpoint", "allow_http"}
        assert b.options["endpoint"].endswith("/devstoreaccount1")
    else:
        assert b.options == {}
    if "endpoint" in b.options:
        assert urlsplit(b.options["endpoint"]).hostname == LOOPBACK


def test_backends_are_fresh(object_store_backend: Backend, request) -> None:
    """Each test gets its own empty location (no leftovers from other tests)."""
    assert make_store(object_store_backend).list().collect() == []


def test_litetool_parses_backend(object_store_backend: Backend) -> None:
    from litetool.storage.location import parse_location

    location = parse_location(object_store_backend.url, object_store_backend.options)
    assert location.scheme == urlsplit(object_store_backend.url).scheme


@pytest.mark.servers
@pytest.mark.parametrize("server", ["moto_server", "seaweedfs_server"])
def test_s3_missing_bucket_is_not_found(server: str, request) -> None:
    """Neither S3 server creates a bucket on first put (as on AWS)."""
    backend = request.getfixturevalue(server).fresh_backend()
    missing = Backend(backend.name, f"s3://{unique_name('missing')}/p", backend.options)
    with pytest.raises(FileNotFoundError):
        make_store(missing).put("k", b"x")


@pytest.mark.servers
def test_seaweedfs_enforces_credentials(seaweedfs_bucket: Backend) -> None:
    from obstore.exceptions import PermissionDeniedError

    wrong = Backend("seaweedfs", seaweedfs_bucket.url, seaweedfs_bucket.options)
    wrong.options["secret_access_key"] = "wrong"
    with pytest.raises(PermissionDeniedError):
        make_store(wrong).put("k", b"x")


def _tcp_listeners() -> list[tuple[str, int, int]]:
    """(address, port, socket inode) of every listening TCP socket on this machine."""
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] != "0A":  # LISTEN
                    continue
                addr_hex, port_hex = fields[1].split(":")
                raw = bytes.fromhex(addr_hex)
                # /proc prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((socket.inet_ntop(family, raw), int(port_hex, 16), int(fields[9])))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


@pytest.mark.servers
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("server", ["seaweedfs_server", "azurite_server"])
def test_server_process_listens_on_loopback_only(server: str, request) -> None:
    srv = request.getfixturevalue(server)
    inodes = _socket_inodes(srv.proc.pid)
    listeners = [(a, p) for a, p, inode in _tcp_listeners() if inode in inodes]
    assert urlsplit(srv.endpoint).port in {p for _, p in listeners}
    assert {a for a, _ in listeners} == {LOOPBACK}, listeners


@pytest.mark.servers
def test_moto_listens_on_loopback_only(moto_server) -> None:
    port = urlsplit(moto_server.endpoint).port
    assert urlsplit(moto_server.endpoint).hostname == LOOPBACK
    assert {a for a, p, _ in _tcp_listeners() if p == port} == {LOOPBACK}
