"""Flags of results/serve.py that cannot work stop it before Ray starts: one line on stderr, exit code 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers.cli import run_main
from tests.helpers.deploy_models import SERVE, exported_model

TIMEOUT_S = 120  # each of these stops before Ray is imported: a few seconds of Python start-up and model check


def _serve(*args: str) -> subprocess.CompletedProcess:
    """results/serve.py as a process: the exit code end to end."""
    return subprocess.run([sys.executable, str(SERVE), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def _serve_main(capsys, *args: str) -> subprocess.CompletedProcess:
    """results/serve.py's main in this process (it stops before Ray is imported; a fresh interpreter costs seconds)."""
    from results.serve import main

    result = run_main(main, list(args), capsys)
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized(), "Ray was started"
    return result


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data):
    return exported_model(tmp_path_factory, tiny_data)


@pytest.mark.parametrize("flags, line", [
    (["--port", "70000"], "error: --port: got 70000, allowed: 1-65535"),
    (["--port", "0"], "error: --port: got 0, allowed: 1-65535"),
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    (["--host", "192.0.2.77"], "error: --host: 192.0.2.77 is not an address of this machine (allowed: 127.0.0.1, "
                               "::1, an address of one of its interfaces, or 0.0.0.0 / :: for all of them)"),
    (["--host", "example.org"], "error: --host: got 'example.org', allowed: an IP address of this machine "
                                "(127.0.0.1, ::1, one of its interfaces' addresses), or 0.0.0.0 / :: for all of them"),
    (["--replicas", "3", "--cpus-per-replica", "1"],
     "error: --replicas: 3 replicas x 1 CPUs do not fit this machine's Ray (2 CPUs): allowed at most 2 at "
     "--cpus-per-replica 1, or fewer CPUs per replica"),
    (["--cpus-per-replica", "3"], "error: --cpus-per-replica: got 3, but this machine's Ray has 2 CPUs "
                                  "(allowed: at most 2)"),
    (["--replicas", "auto", "--min-replicas", "5", "--max-replicas", "6", "--cpus-per-replica", "0.5"],
     "error: --min-replicas: 5 replicas x 0.5 CPUs do not fit this machine's Ray (2 CPUs): allowed at most 4 at "
     "--cpus-per-replica 0.5, or fewer CPUs per replica"),
    (["--replicas", "none"], "error: --replicas: got 'none', allowed: a count >= 1 or 'auto'"),
    (["--num-cpus", "0"], "error: --num-cpus: got 0, allowed: >= 1"),
])
def test_a_flag_that_cannot_work_is_one_line_and_exit_2(model_dir, flags, line, capsys):
    result = _serve_main(capsys, str(model_dir), "--address", "local", "--num-cpus", "2", *flags)
    assert (result.returncode, result.stderr.strip().splitlines(), result.stdout) == (2, [line], "")


def test_a_port_in_use_and_a_bad_model_folder_are_one_line(model_dir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(str(model_dir), "--address", "local", "--port", str(port))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()  # it names who listens there: this test's process
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port} (Address already in use; pid {os.getpid()} "
                           f"listens on it: python") and line.endswith("): give another --port (or --host)"), line
    result = _serve(str(tmp_path), "--address", "local")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no model.json, so not a folder written by results/export.py "
        f"(re-export it with python results/export.py)"]
