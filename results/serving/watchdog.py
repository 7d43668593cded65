"""No process of serve.py outlives it, whatever kills it: a watchdog process, and the sweep a new serve.py makes
of a killed one's leftovers.

Measured (Ray 2.60, 2 loaded cores) after ``kill -9`` of serve.py alone (the OOM killer): its GCS and raylet die
with it (Ray starts them with PR_SET_PDEATHSIG), the workers within ~3 s, but the dashboard and runtime-env
agents (~210 MB) only ~66 s later. After ``kill -9`` of serve.py's process group (a supervisor, a test harness),
HAProxy, which Serve's HAProxyManager actor starts in that actor's own process group, outlived everything,
re-parented to init, holding the port and answering 500 to every request.

The watchdog runs in a session of its own (so a kill of serve.py's process group leaves it), holds the read end
of a pipe whose only write end is serve.py's, and records serve.py's descendants every POLL_S. When the pipe
reads EOF (serve.py stopped, or was killed) it SIGKILLs every recorded process still running, every process that
carries serve.py's owner token (processes.OWNER_ENV) and everything below those, deletes HAProxy's folder and
exits: within a second or two of the kill. HAProxy also dies with its actor on its own (haproxy_bind.sh).

A serve.py that starts (sweep_dead) first waits for the watchdog of a dead serve.py still at work, then ends
whatever still carries a dead serve.py's token (its watchdog was killed too) and deletes HAProxy folders whose
``owner`` file names a dead serve.py: a restart on the same port recovers by itself.

    python -m results.serving.watchdog READ_FD OWNER_TOKEN [HAPROXY_FOLDER]     (started by Watchdog.start)
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from results.serving.processes import (
    OWNER_ENV,
    PROC,
    alive,
    command,
    descendants,
    kill,
    owners,
    started,
    token_alive,
)

MODULE = "results.serving.watchdog"
REPO = Path(__file__).resolve().parents[2]
POLL_S = 2.0
"""How often the watchdog records serve.py's descendants (a /proc scan, ~10 ms of CPU with 170 processes); one
started less than this before a kill is still found by its owner token (Ray's workers and HAProxy keep it; the
dashboard's modules, which write their title over their environment, start with Ray, long before)."""
ROUNDS = 5
"""Kill-and-look-again rounds: a process being killed may start another one meanwhile (a raylet, a worker)."""
EXIT_WAIT_S = 10.0
"""How long a killed process may take to be gone, and a new serve.py waits for a dead one's watchdog."""
OWNER_FILE = "owner"
"""In HAProxy's folder: the token of the serve.py it belongs to."""


class Watchdog:
    """The watchdog process of this serve.py (start it before Ray, stop it after Ray has stopped)."""

    def __init__(self, proc: subprocess.Popen, write_fd: int) -> None:
        self.proc, self.write_fd = proc, write_fd

    @classmethod
    def start(cls, token: str, haproxy_folder: Optional[Path]) -> "Watchdog":
        read_fd, write_fd = os.pipe()  # both non-inheritable: no process of Ray holds the write end open
        # Its own session: a kill of serve.py's process group leaves it. cwd "/" and the repository first on its
        # path: it imports this code, not a `results` folder where serve.py was started.
        env = {key: value for key, value in os.environ.items() if key != OWNER_ENV}  # it is no process of Ray
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen([sys.executable, "-m", MODULE, str(read_fd), token, str(haproxy_folder or "")],
                                pass_fds=(read_fd,), start_new_session=True, stdin=subprocess.DEVNULL, cwd="/",
                                env=env)
        os.close(read_fd)
        return cls(proc, write_fd)

    def stop(self) -> None:
        """After a normal stop: the watchdog ends anything left (nothing, usually), and exits."""
        os.close(self.write_fd)
        try:
            self.proc.wait(timeout=EXIT_WAIT_S + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def end(token: str, tracked: set[tuple[int, int]], exclude: set[int]) -> dict[int, str]:
    """SIGKILL the running ones of ``tracked``, every process carrying ``token`` and all below them, until none is
    left (or ROUNDS); returns pid -> command line of those killed."""
    killed: dict[int, str] = {}
    for _ in range(ROUNDS):
        roots = alive(tracked) | owners().get(token, set())
        targets = alive({p for p in roots | (descendants(*(pid for pid, _ in roots)) if roots else set())
                         if p[0] not in exclude})
        if not targets:
            break
        killed.update({pid: command(pid, 40) for pid, _ in targets})
        kill(targets)
        deadline = time.monotonic() + EXIT_WAIT_S
        while alive(targets) and time.monotonic() < deadline:
            time.sleep(0.05)
    return killed


def watch(read_fd: int, token: str, haproxy_folder: Optional[Path]) -> int:
    owner, me = int(token.split(":")[0]), os.getpid()
    tracked: set[tuple[int, int]] = set()
    while not select.select([read_fd], [], [], POLL_S)[0]:  # nothing is ever written: readable means EOF
        tracked = alive(tracked) | descendants(owner)
    killed = end(token, tracked, exclude={me, owner})
    if haproxy_folder is not None:
        shutil.rmtree(haproxy_folder, ignore_errors=True)
    if killed and not token_alive(token):  # serve.py was killed (a normal stop has ended its processes itself)
        _say(f"serve.py (pid {owner}) was killed; its watchdog killed what it had started: {_listed(killed)}")
    return 0


def watchdogs() -> dict[tuple[int, int], str]:
    """(pid, start time) -> owner token of every watchdog process running (of this user)."""
    found = {}
    for entry in PROC.iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if len(args) >= 5 and args[1:3] == [b"-m", MODULE.encode()]:
            if (start := started(int(entry.name))) is not None:
                found[(int(entry.name), start)] = args[4].decode()
    return found


def sweep_dead() -> list[str]:
    """End the leftovers of every serve.py that was killed (see the module's docstring); one line per finding."""
    lines = []
    waiting = {proc for proc, token in watchdogs().items() if not token_alive(token)}
    deadline = time.monotonic() + EXIT_WAIT_S
    while alive(waiting) and time.monotonic() < deadline:  # a dead serve.py's watchdog, still at work
        time.sleep(0.05)
    for token in [token for token in owners() if not token_alive(token)]:
        if killed := end(token, set(), exclude={os.getpid()}):
            lines.append(f"killed the leftover processes of a killed serve.py (pid {token.split(':')[0]}): "
                         f"{_listed(killed)}")
    bases = {tempfile.gettempdir(), "/tmp"}  # where ingress.py puts them
    for owner_file in {path for base in bases for path in Path(base).glob(f"hap-*/{OWNER_FILE}")}:
        try:
            token = owner_file.read_text().strip()
        except OSError:
            continue
        if not token_alive(token):
            shutil.rmtree(owner_file.parent, ignore_errors=True)
            lines.append(f"deleted {owner_file.parent}, HAProxy's folder of a killed serve.py "
                         f"(pid {token.split(':')[0]})")
    return lines


def _listed(killed: dict[int, str]) -> str:
    return ", ".join(f"{pid} ({line})" for pid, line in sorted(killed.items()))


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:  # serve.py's stderr may be gone with it
        pass


if __name__ == "__main__":
    sys.exit(watch(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None))
