"""Which Ray a run uses: the embedded one's bad settings are one line, and it listens on loopback only."""

from __future__ import annotations

import json
import os
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
             "--set", f"trial.data.root={tmp_path / 'signs'}", "wandb.enabled=false"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: dashboard port {port} on 127.0.0.1 is in use: give another one, or none "
        "(Ray then takes 8265 or the next free port)")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_an_embedded_ray_listens_on_loopback_only(tmp_path):
    """Every TCP port the embedded Ray opens (GCS, raylet, workers, agents, the dashboard and the
    Prometheus /metrics endpoints) is bound to 127.0.0.1, read from the kernel's socket table."""
    code = (
        "import json, time, ray\n"
        "import psutil  # Ray's bundled copy, importable once ray is\n"
        "from train.connect import RayConnection\n"
        "RayConnection('local', 1).connect()\n"
        "ray.get(ray.remote(lambda: 1).remote())  # a worker process too\n"
        "time.sleep(3)  # the agents open their servers right after start\n"
        "procs = [psutil.Process(), *psutil.Process().children(recursive=True)]\n"
        "found = []\n"
        "for proc in procs:\n"
        "    try:\n"
        "        found += [(proc.name(), c.laddr.ip, c.laddr.port) for c in proc.net_connections('inet')\n"
        "                  if c.status == psutil.CONN_LISTEN]\n"
        "    except psutil.Error:\n"
        "        pass\n"
        "print(json.dumps(found))\n"
        "ray.shutdown()\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    listening = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(listening) >= 8, listening  # the servers are there (not an empty table)
    exposed = [entry for entry in listening if entry[1] not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")]
    assert not exposed, exposed
