"""``litetool restore``: restore a database as of its latest state, a time or a txid.

Exit codes: 0 on success (also ``--if-db-not-exists`` with an existing output
and ``--if-replica-exists`` without backups), 2 for bad arguments, 1 for any
other error, 130 when interrupted (SIGINT or SIGTERM); errors are one line.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time

from litetool.cli.output import CONFIG_HELP, human_bytes, human_rate
from litetool.errors import UsageError
from litetool.wording import plural

MAX_PARALLELISM = 256
_SEGMENTS_SHOWN = 10
# argparse takes "-15m" for an unknown option unless it looks like a negative number;
# this parser has no options like that, so relative times may follow --at unquoted.
_NEGATIVE_VALUE = re.compile(r"^-\d*\.?\d+(?:[a-zµ]+(?:\d*\.?\d+[a-zµ]+)*)?$")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser._negative_number_matcher = _NEGATIVE_VALUE  # --at -15m, --at -1h30m
    parser.epilog = """\
Without --at or --txid: the latest restore point. OUT is never overwritten, and
its directory must exist. The restored file is an ordinary database in
rollback-journal mode (one file, no -wal/-shm); an application that uses WAL
switches it back with PRAGMA journal_mode=WAL."""
    parser.add_argument(
        "source",
        metavar="DB_PATH|REPLICA_URL",
        help="a database in the config file (its replicas), or one replica URL",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="where to write the database, in a directory that exists (default: the "
        "database's own path from the config; required with a replica URL); never overwritten",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--at",
        metavar="TIME",
        help="the last transaction committed at or before TIME: RFC 3339 "
        "(2025-01-02T03:04Z, 2025-01-02 03:04:05+02:00) or relative (-15m, 2h ago)",
    )
    target.add_argument("--txid", metavar="N", help="exactly transaction N")
    parser.add_argument(
        "--generation", metavar="G", help="restore from generation G (default: as fits the target)"
    )
    parser.add_argument("--replica", metavar="NAME", help="use only this replica from the config")
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    parser.add_argument(
        "--if-db-not-exists",
        action="store_true",
        help="do nothing (exit 0) when the output already exists",
    )
    parser.add_argument(
        "--if-replica-exists",
        action="store_true",
        help="do nothing (exit 0) when there is no backup to restore",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan; write nothing (reads the index records, and the one "
        "segment a point inside a segment needs)",
    )
    parser.add_argument(
        "--parallelism", metavar="N", default="8", help="objects fetched at once (default: 8)"
    )


def _positive_int(flag: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UsageError(f"{flag}: {value} must be {bound}")
    return value


def parse_target(args: argparse.Namespace):
    """The RestoreTarget the flags ask for (UsageError for bad input)."""
    from litetool.errors import ReplicaFormatError
    from litetool.restore import RestoreTarget
    from litetool.storage import validate_generation
    from litetool.timespec import parse_instant, to_us

    generation = None
    if args.generation is not None:
        try:
            generation = validate_generation(args.generation.strip().lower())
        except ReplicaFormatError:
            raise UsageError(
                f"--generation: {args.generation!r} is not a generation id (16 hex digits)"
            ) from None
    if args.at is not None:
        try:
            moment = parse_instant(args.at)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
        return RestoreTarget(time_us=to_us(moment), generation=generation)
    if args.txid is not None:
        return RestoreTarget(txid=_positive_int("--txid", args.txid, 0), generation=generation)
    return RestoreTarget(generation=generation)


def run(args: argparse.Namespace) -> int:
    import asyncio

    target = parse_target(args)
    parallelism = _positive_int("--parallelism", args.parallelism, 1, MAX_PARALLELISM)
    return asyncio.run(_restore(args, target, parallelism))


async def _restore(args: argparse.Namespace, target, parallelism: int) -> int:
    import asyncio
    import os
    import signal
    from pathlib import Path

    from litetool.cli.targets import resolve_source
    from litetool.errors import NoBackupFound, OutputExists, RestoreError
    from litetool.restore import load_replicas, plan_fetching, restore_plan
    from litetool.restore.output import check_new_output, check_output_free

    source = resolve_source(args.source, config_path=args.config, replica_name=args.replica)
    if args.output:
        out = Path(args.output)
    elif source.from_config and source.db_path is not None:
        out = Path(source.db_path)
    elif args.dry_run:
        out = None
    else:
        raise UsageError(
            "-o OUT is required when restoring from a replica URL",
            hint="add -o /path/to/restored.db",
        )
    out_problem = None
    if out is not None:
        try:
            # A path typed with -o is checked as the TUI checks it (its directory must
            # exist); the database's own path from the config gets its directory made.
            check_new_output(out) if args.output else check_output_free(out)
        except RestoreError as exc:
            if isinstance(exc, OutputExists) and args.if_db_not_exists and os.path.lexists(out):
                print(f"{out} already exists; nothing to restore (--if-db-not-exists)")
                return 0
            if not args.dry_run:
                raise
            out_problem = exc.render().removeprefix("error: ")
    try:
        loaded = await load_replicas(source.replicas, warn=_warn)
    except NoBackupFound as exc:
        if args.if_replica_exists:
            print(f"{exc.message}; nothing to restore (--if-replica-exists)")
            return 0
        raise
    plan, candidates = await plan_fetching(
        loaded.candidates, target, source.replicas, breaks=loaded.breaks
    )
    for broken in loaded.breaks:  # the planner found that none of them matters here
        _warn(f"{broken.describe()} ({broken.error.message}); this restore does not need it")
    replica = next(r for r in source.replicas if r.name == plan.replica)
    if args.dry_run:
        _print_plan(plan, replica.display_url, out, out_problem)
        return 0
    print(
        f"restoring txid {plan.txid} (committed {_when(plan.commit_time_us)}) of generation "
        f"{plan.generation} from replica {plan.replica} ({replica.display_url}) to {out}",
        flush=True,
    )
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        result = await restore_plan(
            plan,
            source.replicas,
            candidates,
            out,
            parallelism=parallelism,
            progress=progress,
            warn=_warn,
        )
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    rate = result.bytes_fetched / result.seconds if result.seconds > 0 else 0.0
    plan = result.plan  # the plan used: another one when an object of the first was broken
    print(
        f"restored {out}: txid {plan.txid}, committed {_when(plan.commit_time_us)}, "
        f"{human_bytes(plan.db_size_pages * plan.page_size)} "
        f"({human_bytes(result.bytes_fetched)} in {plural(result.objects_fetched, 'object')}, "
        f"{result.seconds:.2f}s, {human_rate(rate)})"
    )
    return 0


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _when(time_us: int) -> str:
    from litetool.timespec import format_instant_us

    return format_instant_us(time_us)


def _print_plan(plan, replica_url: str, out, out_problem: str | None) -> None:
    snapshot = plan.snapshot
    segments = plan.segments
    lines = [
        "restore plan (dry run: nothing restored or written)",
        f"  replica     {plan.replica} ({replica_url})",
        f"  generation  {plan.generation}",
        f"  target      txid {plan.txid}, committed {_when(plan.commit_time_us)}",
        f"  database    {plural(plan.db_size_pages, 'page')} of {plan.page_size} bytes "
        f"({human_bytes(plan.db_size_pages * plan.page_size)})",
        f"  snapshot    txid {snapshot.txid}, manifest {snapshot.manifest_digest[:16]}, "
        f"{human_bytes(snapshot.stored_bytes)}",
    ]
    if segments:
        lines.append(
            f"  segments    {len(segments)}: apply txids {segments[0].first_txid}.."
            f"{segments[-1].last_txid}, {human_bytes(sum(s.entry.stored_bytes for s in segments))}"
        )
        shown = segments if len(segments) <= _SEGMENTS_SHOWN else segments[: _SEGMENTS_SHOWN - 1]
        for planned in shown:
            entry = planned.entry
            lines.append(
                f"              {entry.digest[:16]}  txids {entry.first_txid}..{entry.last_txid}"
                f"  apply {planned.first_txid}..{planned.last_txid}"
                f"  {human_bytes(entry.stored_bytes)}"
            )
        if len(shown) < len(segments):
            lines.append(f"              ... {len(segments) - len(shown)} more")
    else:
        lines.append("  segments    none (the snapshot is the target)")
    lines.append(
        f"  to fetch    {human_bytes(plan.fetch_bytes)} in about "
        f"{plural(plan.object_count, 'object')}"
    )
    lines.append(f"  output      {out if out is not None else '(none given: pass -o OUT)'}")
    if out_problem:
        lines.append(f"  note        {out_problem}")
    print("\n".join(lines))


class TerminalProgress:
    """A one-line progress bar on a terminal (percentage, bytes, objects, rate, phase),
    redrawn at most ten times a second.

    The layout is fixed when the restore starts (``start``): the bar's width and the
    width of every field follow from the terminal's width and the totals, so the
    line keeps its width while the numbers change. The percentage is the smaller of
    the share of bytes fetched and the share of objects done (fetched and written),
    rounded down: parallel downloads fetch bytes ahead of the objects being written,
    and 100% means every object is in."""

    #: The widest text ``human_bytes`` writes below a TiB (``1023.9 GiB``).
    SIZE_WIDTH = 10
    PHASE_WIDTH = len("checking integrity")
    MIN_BAR, MAX_BAR = 10, 40

    def __init__(self, stream, *, interval: float = 0.1, columns: int | None = None) -> None:
        self.stream = stream
        self.interval = interval
        self.columns = columns
        self.total_bytes = 0
        self.total_objects = 0
        self.fetched_bytes = 0
        self.objects = 0
        self.text = "fetching"
        self._started = time.monotonic()
        self._drawn = 0.0
        self._width = 80
        self._bar_width = self.MAX_BAR
        self._count_width = 1
        self._show_rate = True

    def start(self, total_bytes: int, total_objects: int) -> None:
        # Also the start of a fallback plan after a broken object: counted afresh.
        self.total_bytes, self.total_objects = total_bytes, total_objects
        self.fetched_bytes = self.objects = 0
        self.text = "fetching"
        self._started = time.monotonic()
        self._layout()
        self._draw(force=True)

    def retotal(self, total_bytes: int, total_objects: int) -> None:
        self.total_bytes, self.total_objects = total_bytes, total_objects
        self._count_width = max(self._count_width, len(str(total_objects)))

    def advance(self, fetched_bytes: int, objects: int) -> None:
        self.fetched_bytes += fetched_bytes
        self.objects += objects
        self._draw()

    def phase(self, text: str) -> None:
        self.text = text
        self._draw(force=True)

    def finish(self, ok: bool) -> None:
        if ok:  # a chunk repeated in a snapshot is fetched once: less than planned
            self.total_bytes, self.total_objects = self.fetched_bytes, self.objects
        self._draw(force=True)
        self.stream.write("\n" if ok else "\r\x1b[K")
        self.stream.flush()

    def fraction(self) -> float:
        """How much is done, from 0.0 to 1.0 (see the class docstring)."""
        shares = [1.0]
        if self.total_bytes:
            shares.append(self.fetched_bytes / self.total_bytes)
        if self.total_objects:
            shares.append(self.objects / self.total_objects)
        return max(0.0, min(shares))

    def _layout(self) -> None:
        self._width = self.columns or shutil.get_terminal_size((80, 20)).columns
        self._count_width = len(str(self.total_objects))
        self._show_rate = True
        room = self._width - 1 - 2 - len(self._status(1.0))
        if room < self.MIN_BAR:  # the rate goes first on a narrow terminal
            self._show_rate = False
            room = self._width - 1 - 2 - len(self._status(1.0))
        self._bar_width = max(self.MIN_BAR, min(self.MAX_BAR, room))

    def _status(self, fraction: float) -> str:
        size = self.SIZE_WIDTH
        count = self._count_width
        parts = [
            f"{int(fraction * 100):3d}%",
            f"{human_bytes(self.fetched_bytes):>{size}}/{human_bytes(self.total_bytes):<{size}}",
            f"{self.objects:>{count}}/{self.total_objects:<{count}} objects",
        ]
        if self._show_rate:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            parts.append(f"{human_rate(self.fetched_bytes / elapsed):>{size + 2}}")
        parts.append(f"{self.text:<{self.PHASE_WIDTH}}")
        return " " + " ".join(parts)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.interval:
            return
        self._drawn = now
        fraction = self.fraction()
        filled = int(self._bar_width * fraction)
        line = f"[{'#' * filled}{'.' * (self._bar_width - filled)}]{self._status(fraction)}"
        self.stream.write("\r" + line[: self._width - 1] + "\x1b[K")
        self.stream.flush()
