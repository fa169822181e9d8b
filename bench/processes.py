"""CPU time and memory of a server's processes, read from /proc (Linux).

A server here is a master process with worker children (gunicorn, nginx). Its CPU time is the
master's own user + system time, plus that of every worker still running (/proc/<pid>/stat), plus
that of every worker the master has already reaped (the master's cutime + cstime: the kernel adds a
child's time to its parent when the parent waits for it). So a worker recycled in the middle of a
run (gunicorn's max_requests) is counted whole: what it used while alive, and nothing twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


# Indexes into _stat_fields: state is field 3 of the stat line, so field n is at n - 3.
PPID, UTIME, STIME, CUTIME, CSTIME, START = 1, 11, 12, 13, 14, 19


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[PPID]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone while we looked
    return found


@dataclass(frozen=True)
class TreeCPU:
    seconds: float  # master + live workers + reaped workers, user + system
    workers: frozenset[int]  # the workers alive at the reading


def tree_cpu(master: int) -> TreeCPU:
    """CPU seconds used so far by `master` and all its workers, living and reaped.

    Read the master, then the workers, then the master again: if a worker was reaped in between
    (its time moved into the master's cutime), read again, so that no worker is counted twice or
    not at all.
    """
    for _ in range(20):
        before = _stat_fields(master)
        workers, worker_ticks = [], 0
        for pid in children(master):
            try:
                fields = _stat_fields(pid)
            except OSError:
                continue
            workers.append(pid)
            worker_ticks += int(fields[UTIME]) + int(fields[STIME])
        after = _stat_fields(master)
        if before[CUTIME : CSTIME + 1] == after[CUTIME : CSTIME + 1]:
            own = sum(int(after[index]) for index in (UTIME, STIME, CUTIME, CSTIME))
            return TreeCPU((own + worker_ticks) / TICKS, frozenset(workers))
        time.sleep(0.01)  # a worker was being reaped: read again
    raise RuntimeError(f"process {master}'s workers kept changing while being read")


def rss_kib(pid: int) -> int:
    """Resident memory of one process now (VmRSS), in KiB."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The highest resident memory of one process so far (VmHWM), in KiB."""
    return _status_kib(pid, "VmHWM")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} for process {pid}")
