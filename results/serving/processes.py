"""This process's descendants (the Ray it started), so that none outlives serve.py.

``ray.shutdown`` stops the GCS and raylet of a Ray this process started, but the processes under the raylet
(workers, replicas, the dashboard and runtime-env agents) notice only later that it is gone, some after tens of
seconds. They are recorded while Ray runs, given a few seconds after the shutdown, and then killed by pid. A
process is identified by pid and start time, so a pid the kernel has handed to another process since is left
alone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Optional

PROC = Path("/proc")


def _stat(pid: int) -> Optional[tuple[int, str, int]]:
    """(parent pid, state, start time in clock ticks since boot), or None when the process is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def descendants(pid: int) -> set[tuple[int, int]]:
    """(pid, start time) of every process below ``pid``."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def alive(processes: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Those still running (a zombie has exited: only its parent's wait is missing)."""
    return {(pid, start) for pid, start in processes
            if (stat := _stat(pid)) is not None and stat[2] == start and stat[1] != "Z"}


def reap(processes: set[tuple[int, int]], grace_s: float) -> set[tuple[int, int]]:
    """Wait up to ``grace_s`` for ``processes`` to exit, then SIGKILL the rest; return those that were killed."""
    deadline = time.monotonic() + grace_s
    while (left := alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # exited meanwhile
            pass
    return left
