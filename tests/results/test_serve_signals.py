"""A results/serve.py killed outright (kill -9 of its process group, or of it alone) leaves no process, no listener
and no HAProxy folder behind, and a restart on its port answers. SIGTERM (systemd, Kubernetes, ``timeout``) stops
it as Ctrl-C does: the application deleted, its Ray shut down, "stopped", exit 0 within seconds, no process left
(checked with ``ps``), also when it arrives during start-up (held at a hold point, infra/hold.py, once Ray is up).
The Ctrl-C case of a serving server is the last test of test_serve.py. The plain uvicorn server (the benchmark's
yardstick) answers the same and stops on either signal with exit 0."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from infra.hold import ENV as HOLD_ENV
from infra.hold import wait_held
from tests.conftest import free_port
from tests.helpers import descendants, kill_group, start_in_session
from tests.helpers.deploy_models import SERVE, exported_model, sign_data, sign_files
from tests.helpers.serve_process import Server, identities, listeners, running, start, still_running

pytestmark = pytest.mark.slow  # results/serve.py as a process, on a Ray of its own

STOP_S = 30
"""serve.py must be gone, with every process of its Ray, this long after the signal (~5 s here; the rest is
room for a loaded machine)."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data):
    return exported_model(tmp_path_factory, tiny_data)


def _killed_and_restarted(model_dir: Path, killed: Server, log: Path, kill) -> Server:
    """``kill`` the server, start another on its port; check that it answers and that nothing of the killed one is
    left: no process (``ps``, by pid and start time), no listener on the port (``ss``), no HAProxy folder."""
    first = identities(killed.processes())
    folders = {folder for pid, _ in first for arg in _args(pid) if "/hap-" in arg
               for folder in [Path(arg), *Path(arg).parents] if folder.name.startswith("hap-")}
    assert any("haproxy" in line for line in still_running(first)) and len(folders) == 1, (first, folders)
    kill(killed.proc)
    killed.proc.wait(timeout=STOP_S)
    restarted = start(model_dir, log, port=killed.port)  # fails unless it answers within START_TIMEOUT_S
    try:
        assert restarted.request("GET", "/healthz") == (200, {"status": "ok"})
        assert still_running(first) == []
        assert listeners(killed.port) <= set(restarted.processes())
        assert [folder for folder in folders if folder.exists()] == []
    except BaseException:
        kill_group(restarted.proc)
        raise
    return restarted


def _args(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_a_killed_server_leaves_nothing_a_restart_recovers_and_sigterm_stops_it(model_dir, tmp_path):
    """kill -9 of serve.py's process group (a supervisor, a harness after a timeout), then of serve.py alone (the
    OOM killer): each time a restart on the same port answers, and no process of the killed server is left (its
    watchdog ends them: HAProxy kept the port and the Ray agents lingered ~66 s). The last one then stops on
    SIGTERM as on Ctrl-C: "stopped", exit 0 within seconds, no process left."""
    server = start(model_dir, tmp_path / "first.log")
    try:
        server = _killed_and_restarted(model_dir, server, tmp_path / "second.log",
                                       lambda proc: os.killpg(proc.pid, signal.SIGKILL))
        server = _killed_and_restarted(model_dir, server, tmp_path / "third.log", lambda proc: proc.kill())
        started = server.processes()
        assert len(started) > 5  # Ray's own processes, HAProxy and the replica
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=STOP_S) == 0
        assert time.monotonic() - sent < STOP_S
        lines = server.log.read_text().splitlines()
        assert lines[-2:] == ["stopping", "stopped"] or (lines[-1] == "stopped" and "stopping" in lines), lines[-5:]
        assert "SIGTERM" not in server.log.read_text()  # Ray's own handler (a traceback naming it) never ran
        assert running(started) == []
    finally:
        if server.proc.poll() is None:
            kill_group(server.proc)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_stops_it_the_same_way(model_dir, tmp_path, signum):
    held = tmp_path / "held"
    log = tmp_path / "serve.log"
    proc = start_in_session([sys.executable, str(SERVE), str(model_dir), "--address", "local", "--num-cpus", "2",
                             "--port", str(free_port())], log, {**os.environ, HOLD_ENV: f"serve:1:{held}"})
    try:
        wait_held(held, timeout=240, alive=lambda: proc.poll() is None)  # Ray is up, Serve not started
        started = [proc.pid] + [pid for pid, _ in descendants(proc.pid)]
        assert len(started) > 3  # Ray's own processes
        proc.send_signal(signum)
        assert proc.wait(timeout=STOP_S) == 0
        lines = log.read_text().splitlines()
        assert lines[-1] == "stopped" and "stopping" in lines and "Traceback" not in log.read_text(), lines[-5:]
        assert running(started) == []
    finally:
        if proc.poll() is None:
            kill_group(proc)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_plain_server_answers_the_same_and_stops_on_either_signal(model_dir, tmp_path_factory, tiny_data,
                                                                      tmp_path, signum):
    (path, label), = sign_files(sign_data(tmp_path_factory, tiny_data), tmp_path / "signs")[:1]
    server = start(model_dir, tmp_path / "plain.log", plain=True)
    try:
        status, answer = server.predict(path)
        assert status == 200 and answer["top"][0]["index"] == label
        assert server.request("POST", "/predict", b"", {"Content-Type": "image/png"})[0] == 400
        server.proc.send_signal(signum)
        assert server.proc.wait(timeout=STOP_S) == 0
        assert server.log.read_text().splitlines()[-1] == "stopped"
    finally:
        if server.proc.poll() is None:
            kill_group(server.proc)
