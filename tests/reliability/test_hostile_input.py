"""Hostile input from the user's side: timestamps, txids, replica URLs, config files.

Whatever a user (or a script gone wrong) types, litetool answers with its
result or with one ``error: ...`` line (warnings before it allowed) and a
documented exit code (docs/OPERATIONS.md, "Exit codes"): 1 for an error, 2 for
a bad argument or configuration. Never a traceback, never the "internal
error" of a bug (exit 70), never a file left behind. Hypothesis draws the
input; the commands run in-process through the real entry point.

No URL drawn here names a remote store (s3://, gs://, az://, http(s)://): a
fuzzer must never send a request off 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import tomli_w
from hostile_replicas import base_replica, files_below
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_common import scale

from litetool.cli import main

EXAMPLES = scale(40, 5_000)
DOCUMENTED_ERRORS = {1, 2}
ERROR_LINE = re.compile(r"^(litetool( [a-z-]+)*: )?error: \S")
REMOTE = re.compile(r"^\s*(s3|gs|gcs|az|azure|abfss?|https?)\s*:", re.IGNORECASE)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_answered(code: int, err: str) -> None:
    """Success, or one error line and a documented exit code."""
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    if code == 0:
        return
    assert code in DOCUMENTED_ERRORS, (code, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, f"exit {code} with nothing on stderr"
    # ours, or argparse's "litetool restore: error: ..." after its usage lines
    assert ERROR_LINE.match(lines[-1]), err
    # argparse prints its usage line before the error; ours print warnings only
    others = [line for line in lines[:-1] if not line.startswith(("warning: ", "usage: ", " "))]
    assert not others, err


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> str:
    return base_replica(tmp_path_factory.mktemp("hostile-input") / "replica").root.as_uri()


@pytest.fixture
def out_dir(tmp_path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


# Text a user might type for a time: ISO forms with every part bent, relative
# forms, numbers, and anything at all.
DIGITS = st.integers(min_value=-99999, max_value=999999).map(str)
ISO_LIKE = st.builds(
    "{}-{}-{}T{}:{}{}".format,
    DIGITS,
    DIGITS,
    DIGITS,
    DIGITS,
    DIGITS,
    st.sampled_from(["Z", "", "+25:00", "-00:00", ":61Z", ".9999999999Z", "+5", "UTC"]),
)
RELATIVE = st.builds(
    "{} {} ago".format, DIGITS, st.sampled_from(["s", "m", "h", "d", "w", "ms", "years", ""])
)
TIMES = st.one_of(ISO_LIKE, RELATIVE, DIGITS, st.text(max_size=40))


@FUZZ
@given(at=TIMES)
def test_any_time_is_a_restore_or_one_line(replica, out_dir, at):
    out = out_dir / "restored.db"
    code, _, err = run("restore", replica, "-o", str(out), "--at", at)
    assert_answered(code, err)
    if code == 0:
        out.unlink()  # a time after the first commit: a real restore
    assert files_below(out_dir) == set(), err


@FUZZ
@given(txid=st.one_of(DIGITS, st.integers().map(str), st.text(max_size=30)))
def test_any_txid_is_a_restore_or_one_line(replica, out_dir, txid):
    out = out_dir / "restored.db"
    code, _, err = run("restore", replica, "-o", str(out), "--txid", txid)
    assert_answered(code, err)
    if code == 0:
        out.unlink()
    assert files_below(out_dir) == set(), err


# Replica locations: junk, scheme-like typos, file URLs with junk in every part.
LOCAL_URLS = st.one_of(
    st.text(max_size=60),
    st.builds("{}:{}".format, st.from_regex(r"[a-z][a-z0-9+.-]{0,8}", fullmatch=True), st.text()),
    st.builds("file://{}".format, st.text(max_size=40)),
    st.builds(
        "file:///{}?{}={}".format,
        st.text(max_size=20),
        st.text(max_size=10),
        st.text(max_size=10),
    ),
).filter(lambda url: not REMOTE.match(url) and "\x00" not in url)


@FUZZ
@given(url=LOCAL_URLS)
def test_any_replica_location_is_one_line(out_dir, url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path lands here, never in the repository
    before = files_below(tmp_path)
    out = out_dir / "restored.db"
    code, _, err = run("restore", url, "-o", str(out))
    assert code != 0, f"restored from {url!r}"
    assert_answered(code, err)
    assert files_below(tmp_path) == before, err


# Config files: every known key with values of every type, unknown keys, and
# text that is not TOML at all.
VALUES = st.recursive(
    st.one_of(
        st.text(max_size=20),
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.sampled_from(["0s", "-1s", "10x", "1GiB", "-5MiB", "99999999999d", "${NO_SUCH_VAR}"]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
DB_KEYS = [
    "path",
    "spool-dir",
    "spool-max-bytes",
    "checkpoint-soft-pages",
    "checkpoint-hard-pages",
    "checkpoint-interval",
    "snapshot-interval",
    "validation-interval",
    "replicas",
    "bogus",
]
REPLICA_KEYS = ["name", "url", "sync-interval", "retention", "gc-grace", "allow-http", "x"]


@st.composite
def configs(draw) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=200))
    replica = draw(
        st.dictionaries(
            st.sampled_from(REPLICA_KEYS),
            VALUES,
            max_size=4,
        )
    )
    replica["url"] = draw(LOCAL_URLS | st.just("file:///tmp/litetool-fuzz-replica"))
    database = draw(st.dictionaries(st.sampled_from(DB_KEYS), VALUES, max_size=5))
    database["replicas"] = draw(st.sampled_from([[replica], [], replica, "x"]))
    document = {
        "log": draw(st.dictionaries(st.sampled_from(["level", "format", "x"]), VALUES)),
        "databases": draw(st.sampled_from([[database], database, [], 7])),
    }
    if draw(st.booleans()):
        document["metrics"] = {"addr": draw(st.text(max_size=30))}
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):  # not representable in TOML: write junk instead
        return repr(document)


@FUZZ
@given(text=configs())
def test_any_config_file_is_shown_or_one_line(tmp_path, text):
    config = tmp_path / "litetool.toml"
    config.write_text(text)
    before = files_below(tmp_path)
    code, _, err = run("config", "show", "--config", str(config))
    assert_answered(code, err)
    assert files_below(tmp_path) == before, err
