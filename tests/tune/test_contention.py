"""Several jobs on one machine: a search with no --address starts a Ray of its own beside the embedded Rays of a
running search and a running server, never joins either (it did: Ray's legacy "auto" lookup took any GCS process
on the machine, and the search hung on "Failed to connect to GCS ... within 5 seconds"), says they are there,
and sizes ``max_concurrent_trials: auto`` to the cores they leave free. Everything finishes; the server answers
throughout. Unit checks of the free-core arithmetic are at the end."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from infra import hold
from tests.conftest import REPO, free_port
from tests.helpers import dotted, fixed_model_smoke, kill_group, start_in_session, wait_held
from train.config import WorkersConfig
from tune.cluster import Capacity, NodeGroup
from tune.trial import max_concurrent_trials

RUN_SEARCH = REPO / "tune" / "run_search.py"

SERVER = ("import sys, threading, http.server, ray\n"
          "from infra.connect import RayConnection\n"
          "RayConnection(None, 1).connect()  # no address, as results/serve.py: an embedded Ray of its own\n"
          "square = ray.remote(lambda x: x * x)\n"
          "class Answer(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        body = str(ray.get(square.remote(7))).encode()\n"
          "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
          "    def log_message(self, *args): pass\n"
          "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Answer).serve_forever()\n")
"""A stand-in for results/serve.py (whose real start needs an exported model): a process holding an embedded
Ray that answers HTTP through it."""


def _answer(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return response.read().decode()


def _wait_answering(port: int, proc, log: Path, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return _answer(port)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the server never answered:\n{log.read_text()[-3000:]}")


@pytest.fixture
def ray_temp():
    """A private Ray temp folder (short: Ray's socket paths must stay within 107 bytes): no cluster that
    `ray start` recorded elsewhere on this machine is found, as on a machine with none."""
    folder = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_search_with_no_address_runs_beside_another_search_and_a_server(tiny_data, tmp_path, ray_temp):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(fixed_model_smoke()))
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    env = {**os.environ, "RAY_TMPDIR": str(ray_temp), "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    cpus = len(os.sched_getaffinity(0))

    def search(name: str, epochs: int, *flags: str, **more_env: str):
        return start_in_session([sys.executable, str(RUN_SEARCH), "--config", str(space), "--storage",
                                 str(tmp_path / name), *flags, "--set", *data, "wandb.enabled=false",
                                 "budget.num_samples=1", "budget.early_stopping=false", f"trial.epochs={epochs}"],
                                tmp_path / f"{name}.log", {**env, **more_env})

    port = free_port()
    server = start_in_session([sys.executable, "-c", SERVER, str(port)], tmp_path / "server.log", env)
    first = second = None
    try:  # one Ray start at a time: on a loaded machine Ray gives a starting raylet 30 s to register
        assert _wait_answering(port, server, tmp_path / "server.log") == "49"
        # The first search holds every core of this machine and pauses in its trial (infra/hold.py), Ray up.
        first = search("first", 2, "--num-cpus", str(cpus), **{hold.ENV: f"checkpoint:1:{tmp_path / 'held'}"})
        wait_held(first, tmp_path / "held", tmp_path / "first.log")
        second = search("second", 1)
        assert second.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-5000:]
        log = (tmp_path / "second.log").read_text()
        assert "Connecting to existing Ray cluster" not in log  # it started its own
        note = next(line for line in log.splitlines() if line.startswith("note: "))
        assert int(note.split()[1]) >= 2 and "other Ray instance(s) run on this machine" in note, note
        assert "max concurrent trials: 1 (auto; " in log  # every core is held by the first search
        assert _answer(port) == "49"  # the server still answers through its Ray
        hold.release(tmp_path / "held")
        assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-5000:]
    finally:
        for proc in (first, second, server):
            if proc is not None:
                kill_group(proc)


# -- free cores ------------------------------------------------------------------------------------------------
ONE_CPU = WorkersConfig(num_workers=1, cpus_per_worker=1, gpus_per_worker=0)


def _capacity(held: float, cpus: float = 2, machine: int = 2) -> Capacity:
    return Capacity((NodeGroup("head", {"CPU": cpus}, 1, here=True),), held_here=held, machine_cpus=machine)


@pytest.mark.parametrize("held, expected", [(0, 2), (1, 1), (2, 1), (5, 1)])
def test_auto_concurrency_counts_the_cores_other_rays_leave_free(held, expected):
    """Two searches on 2 cores: the second runs one 1-CPU trial at a time, not two; never fewer than one."""
    assert max_concurrent_trials(ONE_CPU, "auto", _capacity(held)) == expected


def test_other_nodes_and_a_fixed_setting_are_not_cut():
    capacity = Capacity((NodeGroup("head", {"CPU": 2}, 1, here=True), NodeGroup("node 1", {"CPU": 4}, 1)),
                        held_here=2, machine_cpus=2)
    assert max_concurrent_trials(ONE_CPU, "auto", capacity) == 4  # the other node's 4 cores, none of this one
    assert max_concurrent_trials(ONE_CPU, 3, capacity) == 3
    assert "other Ray instances on this machine hold 2 of its 2 CPUs" in capacity.describe()
