"""Which Ray a run uses: the embedded one's bad settings are one line, and it listens on loopback only; joining a
cluster that does not answer is one line and bounded; a signal while joining stops the run at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.helpers import dotted, kill_group, start_in_session


@pytest.mark.slow
def test_a_dashboard_port_in_use_is_one_line(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, str(REPO / "tune" / "run_search.py"),
             "--config", str(REPO / "search_spaces" / "smoke.yaml"),
             "--address", "local", "--num-cpus", "1", "--dashboard-port", str(port),
             "--set", f"trial.data.root={tmp_path / 'signs'}", "wandb.enabled=false"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: dashboard port {port} on 127.0.0.1 is in use: give another one, or none "
        "(Ray then takes 8265 or the next free port)")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


@pytest.mark.slow
def test_an_embedded_ray_listens_on_loopback_only(tmp_path):
    """Every TCP port the embedded Ray opens (GCS, raylet, workers, agents, the dashboard and the
    Prometheus /metrics endpoints) is bound to 127.0.0.1, read from the kernel's socket table."""
    code = (
        "import json, time, ray\n"
        "import psutil  # Ray's bundled copy, importable once ray is\n"
        "from infra.connect import RayConnection\n"
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
           "from infra.connect import RayConnection\n"
           "started = time.monotonic()\n"
           "try:\n"
           "    RayConnection(sys.argv[1] or None, 1, deadline_s=float(sys.argv[2])).connect()\n"
           "except ConfigError as error:\n"
           "    print(f'error: {error}', file=sys.stderr); sys.exit(2)\n"
           "print(ray.get_runtime_context().gcs_address, round(time.monotonic() - started))\n"
           "ray.shutdown()\n")


@pytest.mark.slow
def test_a_stale_cluster_file_is_one_line_and_a_local_ray(short_tmp):
    """Was: ray.init("auto") retried the dead GCS for minutes, a warning every 5 s, and the search never began."""
    env, stale = _stale_ray_temp(short_tmp)
    result = subprocess.run([sys.executable, "-c", CONNECT, "", "30"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    cluster_file = short_tmp / "rt" / "ray" / "ray_current_cluster"
    assert (f"The Ray cluster at {stale} (named by {cluster_file}) is not answering (Connection refused); "
            "starting a local Ray; `ray stop` clears it") in result.stderr.splitlines()
    gcs, seconds = result.stdout.split()[-2:]
    assert gcs != stale and int(seconds) < 60, result.stdout


@pytest.mark.slow
def test_an_explicit_address_that_does_not_answer_is_one_line_exit_2(short_tmp):
    env, stale = _stale_ray_temp(short_tmp)
    cluster_file = short_tmp / "rt" / "ray" / "ray_current_cluster"
    for address, expected in ((stale, f"error: cannot reach the Ray cluster at {stale} (given by --address): "
                                      "Connection refused"),
                              ("auto", f"error: cannot reach the Ray cluster at {stale} (named by {cluster_file}, for "
                                       "--address auto; `ray stop` clears it): Connection refused")):
        result = subprocess.run([sys.executable, "-c", CONNECT, address, "30"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines() == [expected]


class StuckGcs:
    """A port that greets like a GCS (the HTTP/2 SETTINGS frame every gRPC server sends first) and then never
    answers a call: Ray's client waits on it in C++ for minutes, where no Python signal handler runs. ``joined``
    is set once a second connection has spoken (the first is infra/connect.py's greeting check; the second is
    ray.init's own, made inside the connect guard)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("0.0.0.0", free_port()))  # Ray dials the node IP for 127.0.0.1
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.joined = threading.Event()
        self._spoken = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _greet(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not conn.recv(4096):
                    return
                with self._lock:
                    self._spoken += 1
                    if self._spoken >= 2:
                        self.joined.set()
                conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # an empty SETTINGS frame
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def stuck_gcs():
    gcs = StuckGcs()
    yield gcs
    gcs.close()


@pytest.mark.slow
def test_a_cluster_that_never_answers_ends_the_connect_in_time_with_one_line(stuck_gcs):
    """Was: ray.init retried in C++ for minutes ("Failed to connect to GCS ... within 5 seconds", again and again).
    The deadline is 30 s; this run gives 4 s (RayConnection.deadline_s) to stay short."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", CONNECT, stuck_gcs.address, "4"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert stuck_gcs.joined.is_set()  # it did get as far as ray.init's own connection
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot reach the Ray cluster at {stuck_gcs.address} (given by --address): no answer "
                      "within 4 s"], result.stderr[-3000:]
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_sigterm_while_a_search_joins_a_cluster_stops_it_at_once(stuck_gcs, tmp_path, tiny_data):
    """Was: nothing for ~40 s (the process sat in Ray's C++ retry loop). Now one line, exit 143 within 2 s, and no
    experiment folder left (the search made it before connecting)."""
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    log = tmp_path / "search.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    proc = start_in_session([sys.executable, str(REPO / "tune" / "run_search.py"), "--config",
                             str(REPO / "search_spaces" / "smoke.yaml"), "--address", stuck_gcs.address,
                             "--storage", str(tmp_path / "runs"), "--set", *data, "wandb.enabled=false"], log, env)
    _stop_while_joining(proc, stuck_gcs, signal.SIGTERM, log)
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_while_joining_a_cluster_stops_at_once(stuck_gcs, tmp_path):
    log = tmp_path / "connect.log"
    proc = start_in_session([sys.executable, "-c", CONNECT, stuck_gcs.address, "30"], log,
                            {**os.environ, "PYTHONPATH": str(REPO)})
    _stop_while_joining(proc, stuck_gcs, signal.SIGINT, log)


def _stop_while_joining(proc: subprocess.Popen, gcs: StuckGcs, signum: int, log: Path) -> None:
    """Once ``proc`` is inside ray.init's connection to ``gcs``, send ``signum``: one line, exit 128 + signum,
    within 2 s."""
    try:
        assert gcs.joined.wait(timeout=120), log.read_text()[-3000:]
        sent = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        kill_group(proc)
    assert code == 128 + signum, log.read_text()[-3000:]
    assert took < 2, took
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert log.read_text().splitlines()[-1] == (f"{name} while connecting to the Ray cluster at {gcs.address} "
                                                "(given by --address): stopped")
