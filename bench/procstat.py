"""CPU time and memory of a process tree, read from /proc.

CPU is utime + stime of the process and all its live descendants (fields 14
and 15 of ``/proc/PID/stat``), plus cutime + cstime of the root for
descendants that already exited and were reaped. Clock ticks are 10 ms, so
short intervals are coarse; the benches only compare intervals of seconds.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """root and every live descendant, from /proc/PID/task/*/children."""
    found = [root]
    index = 0
    while index < len(found):
        pid = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            except FileNotFoundError:
                continue
            found.extend(int(c) for c in children if int(c) not in found)
    return found


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of the tree rooted at ``root`` (reaped children included)."""
    total = 0
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After "pid (comm) ", field 3 (state) is index 0: utime=14 -> 11, stime=15 -> 12,
        # cutime=16 -> 13, cstime=17 -> 14.
        total += int(fields[11]) + int(fields[12])
        if pid == root:
            total += int(fields[13]) + int(fields[14])
    return total / TICKS_PER_SECOND


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """(current RSS, peak RSS as VmHWM) summed over the live tree."""
    current = peak = 0
    for pid in descendants(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                current += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1]) * 1024
    return current, peak


def _machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / TICKS_PER_SECOND


def _own_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class MachineLoad:
    """How busy the machine was during a phase, and how much of that was not ours.

    "Ours" is this process plus every child it has reaped (writers,
    replicators, restores), so call ``result`` after the phase's processes
    have exited. "Others" is the noise from the rest of the (shared) machine.
    """

    def __init__(self) -> None:
        self._clock = time.monotonic
        self.started = self._clock()
        self.busy0 = _machine_busy_seconds()
        self.own0 = _own_seconds()

    def result(self) -> dict:
        wall = self._clock() - self.started
        busy = _machine_busy_seconds() - self.busy0
        own = _own_seconds() - self.own0
        return {
            "wall_s": round(wall, 1),
            "busy_cores": round(busy / wall, 2) if wall else 0.0,
            "others_cores": round(max(0.0, busy - own) / wall, 2) if wall else 0.0,
        }
