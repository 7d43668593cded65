"""results/serve.py (or the plain uvicorn server) as a real process for the serve tests: start it, talk HTTP to it,
list what it listens on (``ss``) and what of it still runs (``ps``)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import free_port
from tests.helpers import descendants, kill_group, start_in_session
from tests.helpers.deploy_models import SERVE

START_TIMEOUT_S = 300
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".ppm": "image/x-portable-pixmap"}


@dataclass
class Server:
    host: str
    port: int
    model_dir: Path
    proc: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None, chunked: bool = False) -> tuple[int, dict]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=iter([body]) if chunked else body, headers=headers or {},
                               encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def predict(self, path: Path, multipart: bool = False, query: str = "") -> tuple[int, dict]:
        if multipart:
            body, content_type = form({"file": (path.name, path.read_bytes())})
            return self.request("POST", f"/predict{query}", body, {"Content-Type": content_type})
        return self.request("POST", f"/predict{query}", path.read_bytes(),
                            {"Content-Type": CONTENT_TYPES[path.suffix]})

    def processes(self) -> list[int]:
        """serve.py and every process below it (its Ray, HAProxy, the replicas)."""
        return [self.proc.pid] + [pid for pid, _ in descendants(self.proc.pid)]


def form(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body as browsers and curl -F send it."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
             for name, (filename, data) in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def start(model_dir: Path, log: Path, *flags: str, plain: bool = False, port: Optional[int] = None) -> Server:
    """serve.py with its own Ray (``--address local``, 2 CPUs) on ``port`` (default: a free loopback port), or the
    plain server; returns once it printed its URL (serve.py: once /healthz answers through the ingress)."""
    port = port or free_port()
    command = ([sys.executable, "-m", "results.serving.plain", str(model_dir), "--port", str(port), *flags] if plain
               else [sys.executable, str(SERVE), str(model_dir), "--address", "local", "--num-cpus", "2",
                     "--port", str(port), *flags])
    proc = start_in_session(command, log, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while url not in log.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_group(proc)
            pytest.fail(f"{command[1]} did not print {url} (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return Server("127.0.0.1", port, model_dir, proc, log)


def running(pids: list[int]) -> list[str]:
    """``ps`` lines of those of ``pids`` still running (zombies have exited: their parent has not reaped them)."""
    result = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-p", ",".join(map(str, pids))], capture_output=True,
                            text=True)
    return [line for line in result.stdout.splitlines() if line.split()[1][0] != "Z"]


def identities(pids: list[int]) -> set[tuple[int, int]]:
    """(pid, start time) of those of ``pids`` running now, from /proc: a pid the kernel hands out again later is
    another process."""
    found = set()
    for pid in pids:
        try:
            found.add((pid, int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])))
        except (OSError, IndexError):
            continue
    return found


def still_running(processes: set[tuple[int, int]]) -> list[str]:
    """``ps`` lines of those of ``processes`` (from :func:`identities`) still running."""
    pids = [pid for pid, start in processes if identities([pid]) == {(pid, start)}]
    return running(pids) if pids else []


def listeners(port: int) -> set[int]:
    """Pids with a TCP socket listening on ``port`` (any address), from ``ss -ltnp``."""
    if shutil.which("ss") is None:
        pytest.fail("the listener checks need `ss` (iproute2)")
    lines = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+),", lines)}


def listening(pids: list[int]) -> list[tuple[str, str]]:
    """(local address:port, process) of every TCP socket that ``pids`` listen on, from ``ss -ltnp``."""
    if shutil.which("ss") is None:
        pytest.fail("the listener checks need `ss` (iproute2)")
    wanted = {f"pid={pid}," for pid in pids}
    found = []
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if any(key in fields[-1] for key in wanted):
            found.append((fields[3], fields[-1]))
    return found


def on_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address ([::ffff:127.0.0.1]:port)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.removeprefix("::ffff:").startswith("127.") or host == "::1"
