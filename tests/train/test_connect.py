"""Which Ray a run uses: the embedded one's bad settings are one line, and it listens on loopback only."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

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


def _closed_port() -> int:
    """A port nothing listens on (bound, then closed: a connection to it is refused at once)."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.fixture
def short_tmp():
    """A temp folder with a short path: Ray's socket paths under its temp folder must stay within 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _stale_ray_temp(tmp_path) -> tuple[dict, str]:
    """An environment whose Ray temp folder (a private one: $RAY_TMPDIR/ray, never the machine's /tmp/ray) holds
    the ray_current_cluster file a killed Ray leaves, naming a GCS that no longer answers."""
    temp = tmp_path / "rt"
    (temp / "ray").mkdir(parents=True)
    stale = f"127.0.0.1:{_closed_port()}"
    (temp / "ray" / "ray_current_cluster").write_text(stale)
    env = {**os.environ, "RAY_TMPDIR": str(temp)}
    env.pop("RAY_ADDRESS", None)
    return env, stale


CONNECT = ("import sys, time, ray\n"
           "from train.config import ConfigError\n"
           "from train.connect import RayConnection\n"
           "started = time.monotonic()\n"
           "try:\n"
           "    RayConnection(sys.argv[1] or None, 1).connect()\n"
           "except ConfigError as error:\n"
           "    print(f'error: {error}', file=sys.stderr); sys.exit(2)\n"
           "print(ray.get_runtime_context().gcs_address, round(time.monotonic() - started))\n"
           "ray.shutdown()\n")


def test_a_stale_cluster_file_is_one_line_and_a_local_ray(short_tmp):
    """Was: ray.init("auto") retried the dead GCS for minutes, a warning every 5 s, and the search never began."""
    env, stale = _stale_ray_temp(short_tmp)
    result = subprocess.run([sys.executable, "-c", CONNECT, ""], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    cluster_file = short_tmp / "rt" / "ray" / "ray_current_cluster"
    assert (f"The Ray cluster at {stale} (named by {cluster_file}) is not answering (Connection refused); "
            "starting a local Ray; `ray stop` clears it") in result.stderr.splitlines()
    gcs, seconds = result.stdout.split()[-2:]
    assert gcs != stale and int(seconds) < 60, result.stdout


def test_an_explicit_address_that_does_not_answer_is_one_line_exit_2(short_tmp):
    env, stale = _stale_ray_temp(short_tmp)
    for address, expected in ((stale, f"error: cannot reach the Ray cluster at {stale}: {stale} is not answering "
                                      "(Connection refused)"),
                              ("auto", f"error: cannot reach the Ray cluster at auto: {stale} is not answering "
                                       f"(Connection refused) (named by {short_tmp / 'rt' / 'ray' / 'ray_current_cluster'}"
                                       "; `ray stop` clears it)")):
        result = subprocess.run([sys.executable, "-c", CONNECT, address], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines() == [expected]
