"""The exported sweep's command, run exactly as W&B's agent runs it: expanded by W&B's own code, in a fresh process,
offline; the trial trains with the agent's values and logs one row per epoch with the metric to a W&B run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers import dotted
from tests.helpers.cli import run_main
from tests.helpers.wandb_records import read_offline_run


def agent_command(sweep: dict, values: dict, run_id: str, base_dir: Path) -> list[str]:
    """The command line W&B's agent builds for one run of ``sweep`` with ``values``.

    The macro values come from W&B's own functions (wandb.sdk.launch.sweeps.utils); the substitution loop and the
    file it writes for ${args_json_file} are Agent._command_run's (wandb/wandb_agent.py, wandb 0.2x-0.31), which
    has no public entry point: reproduced line for line.
    """
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = {"args": {key: {"value": value} for key, value in values.items()}, "program": sweep["program"]}
    sweep_command = sweep_utils.create_sweep_command(list(sweep["command"]))
    sweep_vars = sweep_utils.create_sweep_command_args(command)
    json_file = base_dir / "wandb" / "sweep-offline" / f"config-{run_id}.json"
    json_file.parent.mkdir(parents=True, exist_ok=True)
    if "${args_json_file}" in sweep_command:
        json_file.write_text(sweep_vars["args_json"][0])
    sweep_vars["interpreter"] = ["python"]
    sweep_vars["program"] = [command["program"]]
    sweep_vars["args_json_file"] = [str(json_file)]
    if platform.system() != "Windows":
        sweep_vars["env"] = ["/usr/bin/env"]
    command_list = []
    for c in sweep_command:
        c = str(c)
        if c.startswith("${") and c.endswith("}"):
            command_list += sweep_vars.get(c[2:-1]) or []
        else:
            command_list += [c]
    return command_list


@pytest.mark.slow
def test_the_exported_command_trains_one_trial_as_an_agent_runs_it(tiny_data, tmp_path, capsys, monkeypatch):
    from tune.sweep.__main__ import main as sweep_main

    overrides = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)] + ["trial.epochs=2"]
    # The export in this process, from the repository root as the CLI runs (tests/tune/test_sweep_export.py runs
    # the real `python -m tune.sweep`); the agent's command below is a real process.
    monkeypatch.chdir(REPO)
    exported = run_main(sweep_main, ["export", "search_spaces/smoke.yaml", "--set", *overrides], capsys)
    assert exported.returncode == 0, exported.stderr
    sweep = yaml.safe_load(exported.stdout)
    # What the sweep would hand out: a small CNN; its cnn.* values hold (model.name is small_cnn).
    values = {"model.name": "small_cnn", "model.cnn.blocks": 2, "model.cnn.width": 16, "optim.lr": 0.003,
              "optim.weight_decay": 0.001, "augment.geometric": 0.2, "augment.photometric": 0.1}
    run_id = "agentrun1"
    command = agent_command(sweep, values, run_id, tmp_path)
    assert command[:3] == ["/usr/bin/env", "python", "tune/sweep/__main__.py"]
    # The agent's environment: the run id it assigned, offline W&B under tmp, this venv's python as "python".
    env = {**os.environ, "WANDB_RUN_ID": run_id, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)  # ${program} is a file: it must find the repository by itself, as on an agent
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    (run_dir,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    run = read_offline_run(run_dir)
    assert run.run_id == run_id and run.group == "smoke"
    epochs = [row for row in run.history if "val_acc" in row]
    assert [row["epoch"] for row in epochs] == [1, 2]  # one row per epoch, with the metric hyperband reads
    assert [row["_step"] for row in epochs] == [1, 2]
    assert all(0.0 <= row["val_acc"] <= 1.0 for row in epochs)
    assert run.config["params"] == values and run.config["engine"] == "wandb_sweep_agent"
    assert run.config["model"]["name"] == "small_cnn" and run.config["model"]["cnn"]["blocks"] == 2
    assert run.config["optim"]["lr"] == 0.003 and run.config["epochs"] == 2

    # ${args} (--key=value flags) are read the same way; a value the space does not know is one line, exit 2.
    flags = ["--model.name=mobilenetv3_small_050", "--model.cnn.blocks=3", "--optim.lr=0.01", "--nope=1"]
    bad = run_main(sweep_main, ["agent-trial", "--space", "search_spaces/smoke.yaml", *flags], capsys)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: agent parameter(s) nope are not in the space (space keys: model.name, model.cnn.blocks, "
        "model.cnn.width, optim.lr, optim.weight_decay, augment.geometric, augment.photometric)")
    from tune.engines.wandb_params import active
    from tune.space import load_search_file
    from tune.sweep.agent import agent_values

    space = load_search_file(REPO / "search_spaces" / "smoke.yaml").space
    # model.cnn.blocks holds only for small_cnn: swept always, dropped here (as the Optuna searcher never samples it).
    assert active(agent_values(flags[:3], space), space) == {"model.name": "mobilenetv3_small_050", "optim.lr": 0.01}
    assert json.loads(json.dumps(values)) == values
