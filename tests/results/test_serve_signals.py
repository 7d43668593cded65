"""SIGTERM (systemd, Kubernetes, ``timeout``) stops results/serve.py as Ctrl-C does: the application deleted, its
Ray shut down, "stopped", exit 0 within seconds, no process left (checked with ``ps``), also when it arrives
during start-up (held at a hold point, train/hold.py, once Ray is up). The Ctrl-C case of a serving server is the
last test of test_serve.py. The plain uvicorn server (the benchmark's yardstick) answers the same and stops on
either signal with exit 0."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from tests.conftest import free_port
from tests.helpers import descendants, kill_group, start_in_session
from tests.results.deploy_models import SERVE, exported_model, sign_data, sign_files
from tests.results.serve_process import running, start
from train.hold import ENV as HOLD_ENV, wait_held

STOP_S = 30
"""serve.py must be gone, with every process of its Ray, this long after the signal (~5 s here; the rest is
room for a loaded machine)."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data):
    return exported_model(tmp_path_factory, tiny_data)


def test_sigterm_stops_serve_and_the_ray_it_started(model_dir, tmp_path):
    server = start(model_dir, tmp_path / "serve.log")
    try:
        assert server.request("GET", "/healthz") == (200, {"status": "ok"})
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
