"""The processes of a serve.py run (the Ray it started, HAProxy), so that none outlives it.

``ray.shutdown`` stops the GCS and raylet of a Ray this process started, but the processes under the raylet
(workers, replicas, the dashboard and runtime-env agents) notice only later that it is gone, some after tens of
seconds. They are recorded while Ray runs, given a few seconds after the shutdown, and then killed by pid. A
process is identified by pid and start time, so a pid the kernel has handed to another process since is left
alone.

A run also writes its *owner token* (``<pid>:<start time>``) into its environment before Ray starts, so every
process of its Ray inherits it (``$SIGNSEARCH_SERVE_OWNER``): after serve.py was killed outright, its processes
are found by that token even once they are re-parented away from it (results/serving/watchdog.py).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Iterator, Optional

PROC = Path("/proc")
OWNER_ENV = "SIGNSEARCH_SERVE_OWNER"


def _stat(pid: int) -> Optional[tuple[int, str, int]]:
    """(parent pid, state, start time in clock ticks since boot), or None when the process is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _pids() -> Iterator[int]:
    return (int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())


def descendants(*pids: int) -> set[tuple[int, int]]:
    """(pid, start time) of every process below any of ``pids``."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for child in _pids():
        if (stat := _stat(child)) is not None:
            parents.setdefault(stat[0], []).append((child, stat[2]))
    found, todo = set(), list(pids)
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
    kill(left)
    return left


def kill(processes: set[tuple[int, int]]) -> None:
    for pid, _ in alive(processes):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # exited meanwhile, or not ours
            pass


def started(pid: int) -> Optional[int]:
    """The start time of ``pid`` (clock ticks since boot), or None when it is gone."""
    stat = _stat(pid)
    return None if stat is None else stat[2]


def owner_token(pid: int) -> str:
    """``<pid>:<start time>`` of a running process."""
    return f"{pid}:{started(pid)}"


def token_alive(token: str) -> bool:
    """Whether the process a token names still runs (not a later process with the same pid)."""
    pid, _, start = token.partition(":")
    return pid.isdigit() and start.isdigit() and bool(alive({(int(pid), int(start))}))


def owners() -> dict[str, set[tuple[int, int]]]:
    """Owner token -> (pid, start time) of every process (of this user: others' environments are unreadable)
    that inherited one. A process that rewrote its title over its environment (setproctitle) is not found."""
    found: dict[str, set[tuple[int, int]]] = {}
    prefix = f"{OWNER_ENV}=".encode()
    for pid in _pids():
        try:
            environ = (PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix) and (stat := _stat(pid)) is not None:
                found.setdefault(entry[len(prefix):].decode(errors="replace"), set()).add((pid, stat[2]))
    return found


def command(pid: int, width: int = 60) -> str:
    """The command line of ``pid``, shortened, for messages."""
    try:
        args = (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    program = args[0] if " " in args[0] else Path(args[0]).name  # not its folder (unless it set a title)
    text = " ".join([program, *args[1:]]).strip()
    return text if len(text) <= width else text[:width - 3] + "..."


def port_holders(port: int) -> list[int]:
    """Pids of the processes (of this user) with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()  # sl local_address rem_address st ... inode
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    holders = []
    for pid in _pids() if inodes else ():
        try:
            if any(os.readlink(fd) in inodes for fd in (PROC / str(pid) / "fd").iterdir()):
                holders.append(pid)
        except OSError:
            continue
    return holders
