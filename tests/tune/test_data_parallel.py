"""Every shipped space's trial shape (1 or 2 workers per trial, fractional or whole GPUs) through a whole
search: more trials than slots, so trial processes come and go on the same resources, with ASHA on; one shape
is also killed mid-search and resumed. GPUs are Ray's logical ones (``--num-gpus``, ``fake_gpus``): the
trials train on the CPU, but Ray places and accounts for them exactly as on GPU nodes.

Once, every 2-worker trial after the first on a slot failed ("Could not re-use actor"), and a Ray Train
placement group left behind by a trial that Tune stopped made the next one wait forever."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import yaml

from infra import hold
from tests.helpers import dotted, fixed_model_smoke, kill_group, last_line_path, trained_rows, wait_held
from tests.helpers.search import start_search

pytestmark = pytest.mark.slow  # searches on Rays of their own

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
MAX_EPOCHS = 2


def shape_of(space: str) -> dict:
    """The space's trial resources, scaled to this 2-CPU machine: workers and GPUs per worker as shipped, CPUs
    cut to 1 per trial, and as many logical GPUs as one trial needs (at least 1)."""
    resources = yaml.safe_load((SPACES / f"{space}.yaml").read_text())["trial"].get("workers", {})
    workers, gpus = resources.get("num_workers", 1), resources.get("gpus_per_worker", 0)
    return {"workers": workers, "cpus_per_worker": 1 / workers, "gpus_per_worker": gpus,
            "num_gpus": max(1, math.ceil(workers * gpus)) if gpus else 0}


def slots(shape: dict) -> int:
    """Trials that fit at once on 2 CPUs and ``num_gpus`` GPUs (a multi-worker trial's driver takes 0.05 CPU)."""
    cpu = 2 // (shape["workers"] * shape["cpus_per_worker"] + (0.05 if shape["workers"] > 1 else 0))
    trial_gpus = shape["workers"] * shape["gpus_per_worker"]
    return int(min(cpu, shape["num_gpus"] // trial_gpus) if trial_gpus else cpu)


def search_command(tiny_data: dict, tmp_path: Path, shape: dict, num_samples: int) -> list[str]:
    search_file = tmp_path / "search.yaml"
    search_file.write_text(yaml.safe_dump(fixed_model_smoke()))  # the small CNN: fast on 2 cores
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    return ["--config", str(search_file), "--storage", str(tmp_path / "runs"), "--address", "local",
            "--num-cpus", "2", "--num-gpus", str(shape["num_gpus"]),
            "--set", *data, "wandb.enabled=false", f"budget.num_samples={num_samples}",
            f"trial.epochs={MAX_EPOCHS}", "budget.grace_period=1", "budget.reduction_factor=2",
            f"trial.workers.num_workers={shape['workers']}",
            f"trial.workers.cpus_per_worker={shape['cpus_per_worker']}",
            f"trial.workers.gpus_per_worker={shape['gpus_per_worker']}", "trial.workers.fake_gpus=true",
            "failure.stall_timeout_s=120", "trial.model.cnn.blocks=2", "trial.model.cnn.width=8"]


def check_complete_search(summary: dict, num_samples: int) -> dict[str, list[int]]:
    """Every trial ran to its end (or its ASHA stop) without an error, and none trained an epoch twice; returns
    the epochs of each trial's result rows.

    A row can be missing after a kill of the driver (Tune writes result.json as results reach it, and a row
    that was on its way is lost), so rows must rise without a repeat and end at the trial's last epoch.
    """
    assert summary["num_trials"] == num_samples and summary["num_errors"] == 0, summary["trials"]
    assert not summary["interrupted"] and summary["stalled"] is None
    experiment = Path(summary["experiment_dir"])
    rows = {}
    for trial in summary["trials"]:
        assert trial["status"] == "TERMINATED" and trial["error"] is None, trial
        epochs = rows[trial["trial_id"]] = [row["epoch"] for row in trained_rows(experiment / trial["path"])]
        assert epochs == sorted(set(epochs)) and epochs[-1] == trial["epochs"] <= MAX_EPOCHS, (trial, epochs)
    return rows


@pytest.mark.timeout(420)
@pytest.mark.parametrize("space", ["gtsrb"])
def test_a_shipped_trial_shape_runs_a_whole_search(space, tiny_data, tmp_path):
    """(smoke.yaml's shape, 1 worker x 1 CPU, is tests/tune/test_search.py's search: 8 trials on 2 slots, ASHA;
    asl.yaml's, 2 workers x 1 GPU, is the killed search below: 3 trials in turn on its one slot.)"""
    shape = shape_of(space)
    num_samples = slots(shape) + 2  # every slot is used by at least two trials in turn
    log = tmp_path / "search.log"
    proc = start_search(search_command(tiny_data, tmp_path, shape, num_samples), log)
    try:
        assert proc.wait(timeout=400) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    text = log.read_text()
    assert f"max concurrent trials: {slots(shape)} (auto;" in text, text[-3000:]
    summary = json.loads(last_line_path(log).read_text())
    rows = check_complete_search(summary, num_samples)
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in rows.values()), rows  # no kill: every row
    stopped = sum(trial["epochs"] < MAX_EPOCHS for trial in summary["trials"])
    print(f"{space}: {shape}, {num_samples} trials on {slots(shape)} slot(s), {stopped} stopped by ASHA")


@pytest.mark.timeout(600)
def test_a_killed_two_worker_search_resumes_to_the_end(tiny_data, tmp_path):
    """asl.yaml's shape (2 workers x 1 GPU, one slot here): the second trial starts on the slot the first one
    left (the case that once hung: a fresh driver, the first trial's placement group removed), and the driver and
    its Ray are killed while that trial's rank 0 is held after its epoch-1 checkpoint; --resume finishes every
    trial, the held one from epoch 2, and the third on the same slot."""
    shape = shape_of("asl")
    num_samples = 3
    command = search_command(tiny_data, tmp_path, shape, num_samples)
    log, holds = tmp_path / "first.log", tmp_path / "hold"
    proc = start_search(command, log, **{hold.ENV: f"checkpoint:1:{holds}:2"})
    try:
        held = wait_held(proc, holds, log)
    finally:
        kill_group(proc)
    assert f"max concurrent trials: {slots(shape)} (auto;" in log.read_text() and slots(shape) == 1
    killed_at = time.time()
    resume_log = tmp_path / "resume.log"
    proc = start_search(command + ["--resume"], resume_log)
    try:
        assert proc.wait(timeout=420) == 0, resume_log.read_text()[-5000:]
    finally:
        kill_group(proc)
    summary = json.loads(last_line_path(resume_log).read_text())
    rows = check_complete_search(summary, num_samples)
    # The held trial went on from its epoch-1 checkpoint (or ASHA had stopped it there): epoch 1 never twice.
    assert rows[held["trial_id"]] in ([1], [1, 2], [2]), rows
    after = [row["epoch"] for row in trained_rows(Path(summary["experiment_dir"]) / f"trial_{held['trial_id']}")
             if row["timestamp"] > killed_at]
    assert 1 not in after, after
