"""Command-line entry point: argument parsing, error rendering, exit codes.

Each command lives in ``litetool/cli/<command>.py`` with ``add_arguments``
and ``run``. Command modules import nothing heavy at module level, so that
``litetool --help`` and ``litetool version`` start in a few tens of ms; the
work (and its imports) happens inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from litetool import __version__
from litetool.cli.examples import epilog
from litetool.errors import LitetoolError

# (command, module, one-line help)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("replicate", "replicate", "replicate one database to replica URLs (quick start, no config)"),
    ("daemon", "replicate", "replicate every database in the config file (headless)"),
    ("restore", "restore", "restore a database as of its latest state, a time or a txid"),
    ("databases", "inspect", "list the databases in the config file"),
    ("generations", "inspect", "list generations with their time and txid ranges"),
    ("snapshots", "inspect", "list snapshots"),
    ("segments", "inspect", "list segments with their txid ranges"),
    ("verify", "verify", "restore the latest point to a temp dir and check it"),
    ("status", "status", "show the status of a running daemon"),
    ("tui", "tui", "terminal UI: live replication, timeline of restore points, restore"),
    ("config", "config_cmd", "write a starter config file or show the effective config"),
    ("version", "version", "print the version"),
)


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser; with a command name, only that command's module is imported
    and its arguments built (``"*"``: every command, ``None``: none)."""
    parser = argparse.ArgumentParser(
        prog="litetool",
        description="Continuous backup and point-in-time restore for SQLite.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"litetool {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        command_parser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command in ("*", name):
            module = importlib.import_module(f"litetool.cli.{module_name}")
            module.add_arguments(name, command_parser)  # may set notes as its epilog
            command_parser.set_defaults(_module=module)
        command_parser.epilog = epilog(name, command_parser.epilog)
    return parser


def _command_in(argv: list[str]) -> str | None:
    # Top-level options are only -h/-V, so the first other word is the command.
    names = {name for name, _, _ in COMMANDS}
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in names else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_usage(sys.stderr)
        print("error: a command is needed (litetool --help lists them)", file=sys.stderr)
        return 2
    try:
        return int(args._module.run(args) or 0)
    except LitetoolError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("LITETOOL_DEBUG"):
            raise
        print(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(hint: rerun with LITETOOL_DEBUG=1 for a traceback, and report it)",
            file=sys.stderr,
        )
        return 70


def entry() -> None:
    """Console entry point: run ``main`` and leave without interpreter finalization.

    obstore's Rust runtime keeps worker threads that can abort the process
    (SIGABRT) if they race with Python's finalization, even after every
    operation completed; all our files are closed and fsynced explicitly by
    then, so flushing the standard streams and ``os._exit`` is both safe and
    deterministic.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
