"""Which Ray a run uses: the embedded one's bad settings are one line."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import REPO, free_port


def test_a_dashboard_port_in_use_is_one_line(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, str(REPO / "tune" / "run_search.py"), "--config", str(REPO / "search_spaces" / "smoke.yaml"),
             "--address", "local", "--num-cpus", "1", "--dashboard-port", str(port),
             "--set", f"dataset.root={tmp_path / 'signs'}", "wandb.enabled=false"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: dashboard port {port} on 127.0.0.1 is in use: give another one, or none "
        "(Ray then takes 8265 or the next free port)")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
