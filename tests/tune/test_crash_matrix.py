"""The crash-point matrix: a search stopped at every moment of a trial's and a search's life, by kill -9 of the
driver's process group, SIGINT or SIGTERM, with 1-worker and 2-worker trials, resumes with --resume and loses at
most the epoch in progress.

Each chain is one experiment (8 trials of 2 epochs, one at a time, ASHA on) continued session after session: each
session is held at the next point of :data:`POINTS` (infra/hold.py; the first arrival in that session), stopped
there by the chain's action, and resumed by the next; a last session runs the search to its end. The points
follow a search's life, and each session leaves work for the next: trial 1 committed its first epoch; Tune
registers its last checkpoint (the one before deleted, the state not yet saved); a trial is pending, starts,
starts an epoch, reports it, the driver gets a result, a trial process dies and Tune retries it, a trial ends
(finished or ASHA-stopped), the summary is about to be written. After every session and at the end, the invariants:

- the session stopped as asked: exit 130 (SIGINT) / 143 (SIGTERM) with the resume command last;
- a trial Tune had saved as TERMINATED keeps its result.json rows unchanged to the end;
- the final --resume exits 0 with every trial TERMINATED;
- no epoch trained twice: the rows of one epoch carry one ``trained_at`` (a row reported again after a resume
  from the final checkpoint repeats it), every trial's epochs run 1..k without a gap, and no epoch is in two of a
  multi-worker trial's Ray Train checkpoints;
- each summary row's checkpoint holds the epoch of its metrics;
- the Optuna study holds one trial per Tune trial, COMPLETE (with the summary's value) or PRUNED, none RUNNING.

Run alone: ``make test-matrix`` (the chains are the ``crash_matrix`` marker).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import optuna
import pytest

from infra import hold
from tests.conftest import REPO
from tests.helpers import dotted, fixed_model_smoke, kill_group, start_in_session, wait_held

RUN_SEARCH = REPO / "tune" / "run_search.py"
ACTIONS = {"kill": None, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}
POINTS = {
    "1-worker": ["checkpoint", "checkpoint_registered", "pending", "started", "epoch_start", "reported", "result",
                 "recover", "complete", "summary"],
    # A multi-worker trial's weights are in Ray Train's checkpoints; Tune registers a pointer per epoch
    # (tune/train_relay.py). A killed Train worker is retried by Ray Train, not Tune (tests/tune/test_data_parallel.py).
    "2-worker": ["checkpoint", "checkpoint_registered", "pending", "started", "epoch_start", "reported", "result",
                 "complete", "summary"],
}
WORKERS = {"1-worker": ["trial.workers.num_workers=1", "trial.workers.cpus_per_worker=1"],
           "2-worker": ["trial.workers.num_workers=2", "trial.workers.cpus_per_worker=0.5"]}


def _search_args(config: Path, tiny_data: dict, storage: Path, shape: str) -> list[str]:
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    return ["--config", str(config), "--storage", str(storage), "--address", "local", "--num-cpus", "2",
            "--set", *data, *WORKERS[shape], "wandb.enabled=false", "budget.num_samples=8", "trial.epochs=2",
            "max_concurrent_trials=1", "budget.grace_period=1", "budget.reduction_factor=2", "failure.max_failures=2"]


def _start(args: list[str], log: Path, holds: str = ""):
    env = {**os.environ, hold.ENV: holds, hold.TIMEOUT_ENV: "300"}
    env.pop("RAY_ADDRESS", None)
    return start_in_session([sys.executable, str(RUN_SEARCH), *args], log, env)


def _rows(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    rows = []
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            rows.append(json.loads(line))
        except ValueError:  # cut off by a kill: not a row
            pass
    return rows


def _terminated(experiment: Path) -> dict[str, list[dict]]:
    """Trials Tune's saved state lists as TERMINATED, with their rows."""
    from ray.tune import ExperimentAnalysis

    try:
        trials = ExperimentAnalysis(str(experiment)).trials
    except (ValueError, OSError):
        return {}
    return {t.trial_id: _rows(experiment / f"trial_{t.trial_id}") for t in trials if t.status == "TERMINATED"}


def _session(args: list[str], log: Path, point: str, action: str, holds: Path) -> dict:
    """One session held at ``point`` and stopped by ``action``; returns the hold marker."""
    spec = f"{point}:0:{holds}"
    trial_holds = holds.with_name(holds.name + "-trial")
    if point == "recover":  # a trial process dies first (held at its epoch start, killed), then Tune retries it
        spec += f",epoch_start:0:{trial_holds}"
    proc = _start(args, log, spec)
    try:
        if point == "recover":
            os.kill(wait_held(proc, trial_holds, log)["pid"], signal.SIGKILL)
            hold.release(trial_holds)
        # The summary session runs the rest of the search first (~2-6 min on 2 cores, longer beside other jobs).
        held = wait_held(proc, holds, log, timeout=1200 if point == "summary" else 400)
        if ACTIONS[action] is None:
            kill_group(proc)
            return held
        os.kill(proc.pid, ACTIONS[action])
        hold.release(holds)
        code = proc.wait(timeout=300)
        out = log.read_text().strip().splitlines()
        assert code == 128 + ACTIONS[action], f"{point}/{action}: exit {code}\n" + "\n".join(out[-40:])
        assert "--resume" in out[-1] and "Tuner.restore" not in log.read_text(), "\n".join(out[-40:])
        return held
    finally:
        kill_group(proc)


@pytest.mark.crash_matrix
@pytest.mark.timeout(3600)  # a chain is ~10-15 min on 2 quiet cores, ~30 min beside other jobs
@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("shape", list(POINTS))
def test_a_search_stopped_at_any_point_resumes_without_loss(tiny_data, tmp_path, shape, action):
    import yaml

    config = tmp_path / "space.yaml"
    config.write_text(yaml.safe_dump(fixed_model_smoke()))  # the small CNN: the matrix is about state, not models
    storage = tmp_path / "runs"
    args = _search_args(config, tiny_data, storage, shape)
    finished: dict[str, list[dict]] = {}
    experiment = None
    for number, point in enumerate(POINTS[shape]):
        log = tmp_path / f"{number:02d}-{point}.log"
        _session(args + (["--resume"] if number else []), log, point, action, tmp_path / f"hold-{number:02d}")
        experiment = experiment or next(storage.iterdir())
        # No trial the saved state had finished changes afterwards.
        for trial_id, rows in finished.items():
            assert _rows(experiment / f"trial_{trial_id}") == rows, f"{point}/{action}: {trial_id} changed"
        finished.update(_terminated(experiment))

    last = tmp_path / "final.log"
    proc = _start(args + ["--resume"], last)
    try:
        assert proc.wait(timeout=600) == 0, last.read_text()[-5000:]
    finally:
        kill_group(proc)
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["num_trials"] == 8 and summary["interrupted"] is False, summary
    assert all(t["status"] == "TERMINATED" for t in summary["trials"]), [t["status"] for t in summary["trials"]]
    for trial_id, rows in finished.items():
        assert _rows(experiment / f"trial_{trial_id}") == rows, f"{trial_id} changed after it finished"
    for trial in summary["trials"]:
        rows = [row for row in _rows(experiment / f"trial_{trial['trial_id']}") if "epoch" in row]
        epochs = sorted({row["epoch"] for row in rows})
        assert epochs == list(range(1, trial["epochs"] + 1)), (trial["trial_id"], epochs)
        for epoch in epochs:
            stamps = {row["trained_at"] for row in rows if row["epoch"] == epoch}
            assert len(stamps) == 1, f"trial {trial['trial_id']} trained epoch {epoch} {len(stamps)} times"
        checkpoint = experiment / trial["checkpoint"]
        assert json.loads((checkpoint / "metrics.json").read_text())["epoch"] == trial["metrics"]["epoch"], trial
        # A multi-worker trial's Ray Train runs: no epoch in two whole checkpoints (each start resumes from the newest).
        whole = [json.loads(path.read_text()) for path in
                 (experiment / "train_runs" / f"train_{trial['trial_id']}").glob("**/checkpoint_*/metrics.json")
                 if (path.parent / "state.pt").exists()]
        assert len({m["epoch"] for m in whole}) == len(whole), (trial["trial_id"], sorted(m["epoch"] for m in whole))
    # The study: one Optuna trial per Tune trial, in the state Tune's outcome gives it.
    study = optuna.load_study(study_name=experiment.name, storage=f"sqlite:///{experiment / 'study.db'}")
    states = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    tune_ids = {t["trial_id"] for t in summary["trials"]}
    assert tune_ids <= set(states), (tune_ids, states)
    # A proposal made after Tune's last saved state (the driver killed in between) never ran: FAIL, marked as such.
    lost = [t for trial_id, t in states.items() if trial_id not in tune_ids]
    assert all(t.state.name == "FAIL" and "orphaned" in t.user_attrs for t in lost), lost
    for trial in summary["trials"]:
        state = states[trial["trial_id"]]
        if trial["epochs"] == 2:
            assert state.state.name == "COMPLETE" and state.value == pytest.approx(trial["metrics"]["val_acc"])
        else:
            assert state.state.name == "PRUNED", (trial, state)
