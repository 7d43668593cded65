"""A trial that fails on a configuration, data or disk error fails once, with its one line; real
faults are left to Tune's retries (tests/tune/test_resume.py kills a trial and sees it retried)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers import dotted, fixed_model_smoke, result_rows
from train.config import ConfigError
from tune.trial import is_permanent, one_line, permanent_cause


def test_which_errors_are_permanent():
    with pytest.raises(OSError) as full:  # a real "disk full": /dev/full fails every write with ENOSPC
        with open("/dev/full", "w") as handle:
            handle.write("x")
            handle.flush()
    assert full.value.errno == errno.ENOSPC and is_permanent(full.value)
    assert one_line(full.value, "/runs/smoke-1") == ("/runs/smoke-1: No space left on device (free space or choose "
                                                     "another folder, then --resume)")
    assert is_permanent(ConfigError("model.name: unknown model 'x'"))
    assert not is_permanent(RuntimeError("CUDA out of memory")) and not is_permanent(ConnectionResetError())


def test_a_worker_groups_permanent_error_is_found_behind_rays_wrappers():
    from ray.exceptions import ActorDiedError
    from ray.train import WorkerGroupError
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback  # what Ray Train sends back

    error = ConfigError("model.weights: /w.safetensors could not be loaded into mobilenetv3_small_050 (x)")
    wrapped = {rank: UserExceptionWithTraceback(error, "Traceback ...") for rank in (0, 1)}
    assert permanent_cause(WorkerGroupError("failed", wrapped)) is error
    # A worker that died (a lost node, an OOM kill) is a real fault: Tune retries it.
    mixed = {0: UserExceptionWithTraceback(error, "Traceback ..."), 1: ActorDiedError()}
    assert permanent_cause(WorkerGroupError("failed", mixed)) is None


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_every_trial_failing_on_a_config_error_fails_once_and_ends_the_search_with_its_line(tiny_data, tmp_path):
    """Pretrained weights from a file that is no weights file: the driver only sees that the file exists
    (loading it means building the model); each trial fails on it once, not max_failures + 1 times."""
    weights = tmp_path / "mobilenetv3_small_050.safetensors"
    weights.write_bytes(b"not a safetensors file")
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    search_file = tmp_path / "search.yaml"
    search_file.write_text(yaml.safe_dump(fixed_model_smoke()))
    command = [sys.executable, str(REPO / "tune" / "run_search.py"),
               "--config", str(search_file), "--storage", str(tmp_path / "runs"),
               "--address", "local", "--num-cpus", "2", "--set", *data, "wandb.enabled=false",
               "budget.num_samples=2", "failure.max_failures=2", "trial.model.name=mobilenetv3_small_050",
               "trial.model.pretrained=true", f"trial.model.weights={weights}",
               "--verbose"]  # Ray's full output, trials' own lines included: none may hold a traceback
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=360)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: model.weights: {weights} could not be loaded into mobilenetv3_small_050 ("), line
    assert "Traceback" not in result.stdout + result.stderr
    # --verbose brought Ray's own output back (its table of each trial's config), which the default display hides.
    assert result.stdout.count("started with configuration") == 2, result.stdout[-3000:]
    summary = json.loads(next((tmp_path / "runs").glob("smoke-*/summary.json")).read_text())
    assert summary["best"] is None and summary["num_trials"] == summary["num_errors"] == 2
    assert all(t["status"] == "ERROR" and t["error"] == line.removeprefix("error: ") for t in summary["trials"])
    # One attempt per trial, read from what Tune's driver wrote, not from forwarded trial output (Ray
    # forwards a trial's lines asynchronously and may drop the last ones when the search ends): each
    # trial reported exactly once, its error line, and Tune never saw an exception to retry.
    experiment = Path(summary["experiment_dir"])
    for trial in summary["trials"]:
        rows = result_rows(experiment / trial["path"])
        assert [row["trial_error"] for row in rows] == [line.removeprefix("error: ")], rows
    assert not list(experiment.glob("trial_*/error.txt")), "Tune saw a failure and retried"
