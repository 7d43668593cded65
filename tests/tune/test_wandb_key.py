"""The W&B key never reaches Ray's session folder or the experiment: a search with a (fake) key in its
environment, W&B forced offline so nothing is sent, then every file of both is searched for the key.
The search runs with --verbose (Ray's full output, the trials' output forwarded), so the console is
searched with the most on it, and --verbose is shown to bring Ray's output back."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import descendants, dotted, kill_group, last_line_path, start_in_session, wait_held
from train import hold
from tests.tune.wandb_records import read_offline_run

FAKE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"  # 40 hex digits, the shape of a real W&B key


def _files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:  # sockets, files removed while Ray shut down
                continue
    return found


def _environ(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "environ").read_bytes()
    except OSError:  # gone since it was listed
        return b""


@pytest.mark.timeout(400)
def test_wandb_key_stays_out_of_ray_logs_and_the_experiment(tiny_data, tmp_path):
    # Ray's whole temp dir for this search (sessions, logs, runtime envs): a short path of our own, since
    # Ray's socket paths must fit in 107 bytes, and the shared /tmp/ray holds other users' sessions.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    storage = tmp_path / "runs"
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    command = [sys.executable, str(REPO / "tune" / "run_search.py"),
               "--config", str(REPO / "search_spaces" / "smoke.yaml"), "--storage", str(storage),
               "--address", "local", "--num-cpus", "2", "--verbose",  # everything on the console too
               "--set", *data, "budget.num_samples=2", "trial.epochs=2", "wandb.enabled=true"]
    holds = tmp_path / "hold"
    env = {**os.environ, "WANDB_API_KEY": FAKE_KEY, "WANDB_MODE": "offline", "RAY_TMPDIR": str(ray_tmp),
           hold.ENV: f"checkpoint:1:{holds}"}
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "search.log"
    proc = start_in_session(command, log, env)
    try:
        # While a trial is held after its first epoch (W&B has logged it, every Ray process is up): the
        # environment of every process the driver started, Ray's and W&B's service alike, lacks the key. (The
        # driver's own /proc/<pid>/environ is its environment at exec; it is the one process that holds the key.)
        wait_held(proc, holds, log)
        below = descendants(proc.pid)
        names = " ".join(command for _, command in below)
        assert "gcs_server" in names and "raylet" in names and "wandb-core" in names, names
        holding = [command for pid, command in below if FAKE_KEY.encode() in _environ(pid)]
        assert holding == [], f"processes started with the W&B key in their environment: {holding}"
        hold.release(holds)
        assert proc.wait(timeout=360) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    try:
        summary = json.loads(last_line_path(log).read_text())
        experiment = Path(summary["experiment_dir"])
        runs = sorted((experiment / "wandb").glob("offline-run-*"))
        assert {read_offline_run(run).run_id for run in runs} == {t["trial_id"] for t in summary["trials"]}
        sessions = list(ray_tmp.glob("ray/session_*"))
        assert sessions and any(_files_holding(ray_tmp, b"raylet"))  # the session's logs were searched
        for root in (ray_tmp, experiment):
            assert _files_holding(root, FAKE_KEY.encode()) == [], f"the W&B key was written under {root}"
        text = log.read_text()
        assert FAKE_KEY not in text
        # --verbose brought Ray's own output back: each trial's config table and the trials' own lines
        # (an epoch-1 line: Ray forwards trial output asynchronously and may drop a trial's last lines
        # when the search ends, but epoch 1's line is printed a whole epoch before that).
        assert text.count("started with configuration") == 2 and "epoch 1/2" in text
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
