"""End to end: `make search` on the smoke space, the dashboard, W&B offline runs. Real Ray, real processes.
(Faults, retries and --resume: tests/tune/test_resume.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

from tests.conftest import REPO
from tests.helpers import dotted, kill_group, last_line_path, start_in_session
from tests.helpers.wandb_records import read_offline_run

SMOKE = REPO / "search_spaces" / "smoke.yaml"


def _search_args(tiny_data: dict, storage: Path | str, *extra: str) -> list[str]:
    """CLI arguments running the smoke space on the tiny synthetic set (budget kept from smoke.yaml)."""
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    return ["--storage", str(storage), "--address", "local", "--num-cpus", "2", "--set", *data, *extra]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    env.pop("RAY_ADDRESS", None)
    return env


def _start(args: list[str], log: Path, command: list[str] | None = None) -> subprocess.Popen:
    command = command or [sys.executable, str(REPO / "tune" / "run_search.py"), "--config", str(SMOKE)]
    return start_in_session(command + args, log, _env())


def _auth_token() -> str:
    """Ray 2.60 guards the dashboard with a token (~/.ray/auth_token), printed by `ray get-auth-token`."""
    ray_cli = Path(sys.executable).with_name("ray")
    return subprocess.run([str(ray_cli), "get-auth-token"], capture_output=True, text=True, check=True).stdout.strip()


def _dashboard_answers(proc: subprocess.Popen, log: Path, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith("Ray dashboard: http"):
                url = line.split(": ", 1)[1].strip()
                request = urllib.request.Request(f"{url}/api/version",
                                                 headers={"Authorization": f"Bearer {_auth_token()}"})
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return json.loads(response.read())
                except OSError:
                    pass
        time.sleep(1)
    raise AssertionError(f"dashboard never answered while the search ran:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_search_runs_asha_tpe_with_wandb_and_dashboard(tiny_data, tmp_path):
    log = tmp_path / "search.log"
    args = _search_args(tiny_data, tmp_path / "runs")
    proc = _start([], log, command=["make", "--no-print-directory", "search", "ARGS=" + " ".join(args)])
    try:
        version = _dashboard_answers(proc, log)
        assert version["ray_version"] == "2.60.0"
        assert proc.wait(timeout=540) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    summary = json.loads(last_line_path(log).read_text())
    search = yaml.safe_load(SMOKE.read_text())
    trial_epochs = search["trial"]["epochs"]
    assert summary["num_trials"] == search["budget"]["num_samples"] >= 4
    assert summary["num_errors"] == 0
    epochs = [trial["epochs"] for trial in summary["trials"]]
    assert min(epochs) < trial_epochs, f"ASHA stopped no trial early: {epochs}"
    assert max(epochs) == trial_epochs
    assert summary["total_epochs"] == sum(epochs) < len(epochs) * trial_epochs
    assert summary["best"]["metrics"]["val_acc"] == max(t["metrics"]["val_acc"] for t in summary["trials"])
    assert set(summary["versions"]) >= {"ray", "torch", "timm", "kornia", "optuna", "wandb"}
    assert summary["data_fingerprint"]
    experiment = Path(summary["experiment_dir"])
    # Both models of the space were trained (the warm-start point is a MobileNetV3).
    assert {t["config"]["model"]["name"] for t in summary["trials"]} == {"small_cnn", "mobilenetv3_small_050"}
    _check_compact_output(log.read_text(), summary, experiment)
    best_config = yaml.safe_load((experiment / "best_config.yaml").read_text())
    assert best_config == summary["best"]["config"]
    assert (experiment / "search.yaml").is_file()
    # Every trial is an offline W&B run in the experiment's group, holding its config and per-epoch metrics.
    runs = sorted((experiment / "wandb").glob("offline-run-*"))
    assert len(runs) == summary["num_trials"]
    by_id = {trial["trial_id"]: trial for trial in summary["trials"]}
    for run_dir in runs:
        record = read_offline_run(run_dir)
        assert record.group == experiment.name
        trial = by_id[record.run_id]
        assert record.config["optim"]["lr"] == pytest.approx(trial["config"]["optim"]["lr"])
        assert [row["epoch"] for row in record.history] == list(range(1, trial["epochs"] + 1))
        assert record.history[-1]["val_acc"] == pytest.approx(trial["metrics"]["val_acc"])


def _check_compact_output(text: str, summary: dict, experiment: Path) -> None:
    """A line per finished trial, Ray's table with the sampled parameters only, the study's dashboard
    command; no per-trial config tables (Ray's default output printed ~970 lines for this search)."""
    lines = text.splitlines()
    assert len(lines) <= 150, f"{len(lines)} lines of output"
    assert "started with configuration" not in text and "data/cache_dir" not in text
    for trial in summary["trials"]:
        (line,) = [line for line in lines if f"] trial {trial['trial_id']} " in line]
        assert ("stopped by ASHA" in line) == (trial["epochs"] < summary["epochs"]), line
        assert f"val_acc {trial['metrics']['val_acc']:.4f}" in line
    header = next(line for line in lines if line.startswith("| Trial name"))
    assert "optim.lr" in header and "model.name" in header and "optim.batch_size" not in header
    # The last table: a parameter a trial never sampled (model.cnn.* of a MobileNetV3: its `when` did not hold)
    # is "-", not the config's default shown as if it had been searched.
    columns = [cell.strip() for cell in header.split("|")]
    last_rows = {}
    for line in lines:
        if line.startswith("| run_trial_"):
            cells = [cell.strip() for cell in line.split("|")]
            last_rows[cells[1]] = dict(zip(columns, cells))
    for trial in summary["trials"]:
        row = last_rows[f"run_trial_{trial['trial_id']}"]
        sampled = trial["config"]["model"]["name"] == "small_cnn"
        assert (row["model.cnn.blocks"] == "-") != sampled, (trial["params"], row)
    command = next(line for line in lines if line.startswith("Optuna study: optuna-dashboard sqlite:///"))
    study = optuna.load_study(study_name=experiment.name, storage=command.split("optuna-dashboard ", 1)[1])
    states = sorted(t.state.name for t in study.trials)
    assert states == sorted("PRUNED" if t["epochs"] < summary["epochs"] else "COMPLETE"
                            for t in summary["trials"])
