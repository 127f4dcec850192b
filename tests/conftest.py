"""Hypothesis profiles for the whole suite.

``dev`` (default): 200 examples per property. ``ci``: 1000 examples, chosen
with ``HYPOTHESIS_PROFILE=ci`` (``.ci/run`` sets it). No deadline in either:
timing on a shared 2-core machine is too noisy for per-example deadlines.

Object-store servers (moto, SeaweedFS, Azurite; code in ``tests/servers.py``):
session-scoped, started lazily by the first test that asks for one, stopped at
session end. ``object_store_backend`` runs a test against every backend.

Nothing the suite does may leave 127.0.0.1. At import (before any server or
subprocess starts; children inherit it), the AWS environment is made hermetic:
no AWS_* variable of the developer's shell applies, no shared AWS file is read,
``AWS_EC2_METADATA_DISABLED=true`` (so S3 credentials are never asked of the
instance metadata endpoint, 169.254.169.254), and should anything ask anyway,
``AWS_METADATA_ENDPOINT`` is a closed loopback port. Tests that need other AWS
settings set them with ``monkeypatch``.
"""

import os

import pytest
from hypothesis import settings
from servers import (
    SERVER_CLASSES,
    AzuriteServer,
    Backend,
    MotoServer,
    SeaweedFSServer,
    local_backend,
    memory_backend,
)

HERMETIC_AWS_ENVIRONMENT = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9",
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
}
for _name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[_name]
os.environ.update(HERMETIC_AWS_ENVIRONMENT)

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# -- object-store servers -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_litetool_left_running():
    """A test that fails midway leaves no litetool process of the harness
    (tests/app_harness.py) running into the next tests."""
    yield
    import app_harness

    app_harness.kill_leftovers()


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory):
    with SeaweedFSServer(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory):
    with AzuriteServer(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def moto_bucket(moto_server) -> Backend:
    return moto_server.fresh_backend()


@pytest.fixture
def seaweedfs_bucket(seaweedfs_server) -> Backend:
    return seaweedfs_server.fresh_backend()


@pytest.fixture
def azurite_container(azurite_server) -> Backend:
    return azurite_server.fresh_backend()


OBJECT_STORE_BACKENDS = ("memory", "local", "moto", "seaweedfs", "azurite")


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.servers) if name in SERVER_CLASSES else name
        for name in OBJECT_STORE_BACKENDS
    ]
)
def object_store_backend(request, tmp_path) -> Backend:
    """A fresh, empty replica location on each backend: Backend(name, url, options)."""
    if request.param == "memory":
        return memory_backend()
    if request.param == "local":
        return local_backend(tmp_path / "replica")
    return request.getfixturevalue(f"{request.param}_server").fresh_backend()


# -- leaving the test process ---------------------------------------------------------------
# obstore's Rust runtime keeps worker threads that can abort the process (SIGABRT)
# if they race with Python's finalization. After pytest has printed its summary,
# leave with its exit status and without finalization (litetool.cli.entry does
# the same for the command line).
_exit_status = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    code = _exit_status["code"]
    if code is None or hasattr(config, "workerinput"):
        return
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
