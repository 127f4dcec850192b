"""The headless daemon: every configured database, signals, ``--exec``, metrics.

SIGINT or SIGTERM stops replication gracefully (a final capture and a final
sync of every replica) and the process exits 0, or 3 when committed
transactions reached no replica (the log says how many). With ``exec``, the
application runs as a child process: signals are forwarded to it, and
litetool stops (with its final sync) when the child exits, exiting with the
child's status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shlex
import signal
import sys

from litetool import __version__
from litetool.engine.metrics import MetricsServer
from litetool.engine.replication import DatabaseReplication
from litetool.engine.runtime.memory import lower_thread_priority, tune_allocator
from litetool.engine.runtime.status import StatusBoard
from litetool.errors import ConfigError, LitetoolError
from litetool.eventlog import LogFunction

GIL_SWITCH_SECONDS = 0.001
# Exit status when replication stopped with committed transactions that reached
# no replica (they stay in the database and the spool for the next start).
UNREPLICATED_EXIT_CODE = 3
# Threads for blocking work (spool reads, compression, hashing) of all replicas.
WORKER_THREADS = 2


async def run_daemon(
    settings,  # litetool.config.model.Settings
    *,
    log: LogFunction,
    exec_command: str | None = None,
    board: StatusBoard | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Replicate until stopped; returns the process exit code."""
    if not settings.databases:
        raise ConfigError("no databases configured", hint="add a [[databases]] table")
    board = board or StatusBoard(version=__version__)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    tune_allocator()
    # The capture thread stamps commit times; it must not wait long for the
    # GIL while the event loop encodes and uploads (default: 5 ms).
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    # Worker threads each keep a compressor and an allocator arena: few of them.
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=WORKER_THREADS,
            thread_name_prefix="litetool-worker",
            initializer=lower_thread_priority,
        )
    )
    child: asyncio.subprocess.Process | None = None

    def on_signal(signum: int) -> None:
        log("info", "signal", signal=signal.Signals(signum).name)
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)
        else:
            stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)

    replications = [DatabaseReplication(db, board, log=log) for db in settings.databases]

    async def verify() -> list[dict]:
        results = []
        for replication in replications:
            results += [r.as_dict() for r in await replication.validate()]
        return results

    metrics = None
    if settings.metrics.addr:
        metrics = MetricsServer(board, settings.metrics.addr, verify=verify)
        await metrics.start()
        log("info", "metrics listening", addr=f"{metrics.host}:{metrics.port}")

    tasks = [asyncio.create_task(r.run(stop)) for r in replications]
    exit_code = 0
    command = exec_command or settings.exec
    try:
        if command:
            argv = shlex.split(command)
            if not argv:
                raise ConfigError("exec: empty command")
            try:
                child = await asyncio.create_subprocess_exec(*argv)
            except OSError as exc:
                raise ConfigError(f"exec: cannot run {argv[0]!r}: {exc.strerror}") from None
            log("info", "exec started", pid=child.pid, command=argv[0])
            waiter = asyncio.create_task(child.wait())
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                exit_code = child.returncode or 0
                log("info", "exec exited", status=child.returncode)
            stop.set()
        else:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, LitetoolError):
                raise result
            if isinstance(result, BaseException):
                raise result
        unreplicated = sum(r.unreplicated for r in replications)
        if unreplicated:
            # The process must not look like a clean stop: say how many.
            log(
                "error",
                "exit with unreplicated transactions",
                count=unreplicated,
                exit_code=UNREPLICATED_EXIT_CODE,
            )
            exit_code = exit_code or UNREPLICATED_EXIT_CODE
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            await child.wait()
        if metrics is not None:
            await metrics.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    return exit_code
