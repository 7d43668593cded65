"""One real tiny search (tune/run_search.py: local Ray, 2 CPUs, ASHA + TPE, W&B offline) shared by the
tests of results/: run on first use, once per test session, in a temp folder of its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.helpers import dotted, kill_group, last_line_path, start_in_session

# 4 trials x up to 3 epochs; ASHA (grace 1, reduction factor 3) compares them at epoch 1, so some stop there.
BUDGET = {"num_samples": 4, "grace_period": 1, "reduction_factor": 3}
EPOCHS = 3
_done: dict[str, Path] = {}


def tiny_search(tmp_path_factory, tiny_data: dict) -> Path:
    """The experiment folder of the shared search (runs it the first time it is asked for)."""
    if "experiment" not in _done:
        root = tmp_path_factory.mktemp("searched")
        overrides = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
        overrides += [f"budget.{key}={value}" for key, value in BUDGET.items()] + [f"trial.epochs={EPOCHS}",
                                                                                 "wandb.enabled=true"]
        command = [sys.executable, str(REPO / "tune" / "run_search.py"), "--config",
                   str(REPO / "search_spaces" / "smoke.yaml"), "--storage", str(root / "runs"),
                   "--address", "local", "--num-cpus", "2", "--set", *overrides]
        env = {**os.environ, "WANDB_MODE": "offline"}
        env.pop("RAY_ADDRESS", None)
        log = root / "search.log"
        proc = start_in_session(command, log, env)
        try:
            code = proc.wait(timeout=400)
        finally:
            kill_group(proc)
        assert code == 0, log.read_text()[-5000:]
        summary = json.loads(last_line_path(log).read_text())
        assert summary["num_trials"] == BUDGET["num_samples"] and summary["num_errors"] == 0, summary
        _done["experiment"] = last_line_path(log).parent
    return _done["experiment"]
