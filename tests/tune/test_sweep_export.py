"""The sweep export (python -m tune.sweep export) and the engine's pieces that need no training: every shipped
space becomes a config W&B's own schema accepts, every distribution maps to its W&B twin, bad input is one line,
and W&B's engine proposes the same values from the same runs and seed."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tune.engines.wandb_config import sweeps_module, validate
from tune.engines.wandb_sweep import engine_config
from tune.space import load_search_file

SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))


def export(*args: str) -> subprocess.CompletedProcess:
    """``python -m tune.sweep export ARGS`` from the repository root, in this process (its main, as the CLI runs it)."""
    import contextlib
    import io
    import os

    from tune.sweep.__main__ import main

    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["export", *args])
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(["python", "-m", "tune.sweep", "export", *args], code, out.getvalue(),
                                       err.getvalue())


def test_the_cli_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "tune.sweep", "export", "search_spaces/smoke.yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert yaml.safe_load(result.stdout)["name"] == "smoke"


@pytest.mark.parametrize("space", SPACES, ids=[p.stem for p in SPACES])
def test_every_shipped_space_exports_a_valid_sweep(space):
    """A multi-objective space is exported for the one objective named (a sweep optimises one metric)."""
    search = load_search_file(space)
    chosen = ["--objective", search.metric] if search.objectives else []
    result = export(str(space.relative_to(REPO)), *chosen)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    run_cap = config.pop("run_cap")  # W&B's server takes it; the sweeps package's schema predates it
    assert sweeps_module().schema_violations_from_proposed_config(config) == []
    assert run_cap == search.budget.num_samples
    assert config["method"] == "bayes"
    assert config["metric"] == {"name": search.metric, "goal": "maximize" if search.mode == "max" else "minimize"}
    assert config["early_terminate"] == {"type": "hyperband", "min_iter": search.budget.grace_period,
                                         "eta": search.budget.reduction_factor}
    assert list(config["parameters"]) == list(search.space)  # none dropped
    conditional = [key for key, param in search.space.items() if param.when]
    for key in conditional:  # swept always; the description names each, with its condition
        assert f"{key} only when " in config["description"]
    assert config["command"] == ["${env}", "${interpreter}", "${program}", "agent-trial", "--space",
                                 str(space.relative_to(REPO)), "${args_json_file}"]
    assert config["program"] == "tune/sweep/__main__.py" and (REPO / config["program"]).is_file()


def test_a_multi_objective_space_needs_its_sweep_objective_named():
    result = export("search_spaces/smoke_pareto.yaml")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: objectives: a W&B Sweep optimises one metric and this space has 2 (val_acc max, latency_ms min): "
        "export it for one with --objective val_acc (latency_ms is measured by the in-Ray search only, not by an "
        "agent's trial)")
    refused = export("search_spaces/smoke_pareto.yaml", "--objective", "latency_ms")
    assert refused.returncode == 2 and refused.stderr.startswith("error: objectives: a W&B Sweep optimises one")


def test_each_distribution_maps_to_its_wandb_twin(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"experiment": "x", "trial": {"epochs": 4}, "budget": {"early_stopping": False},
                                     "space": {
        "optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "augment.geometric": {"type": "uniform", "low": 0.0, "high": 0.5},
        "augment.erasing": {"type": "quniform", "low": 0.0, "high": 0.4, "q": 0.1},
        "model.cnn.blocks": {"type": "randint", "low": 2, "high": 5},
        "optim.optimizer": {"type": "choice", "values": ["adamw", "sgd"]}}}))
    result = export(str(space), "--set", "budget.num_samples=5", "--method", "random")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["parameters"] == {
        "optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "augment.geometric": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        "augment.erasing": {"distribution": "q_uniform", "min": 0.0, "max": 0.4, "q": 0.1},
        "model.cnn.blocks": {"distribution": "int_uniform", "min": 2, "max": 4},  # randint's high is exclusive
        "optim.optimizer": {"values": ["adamw", "sgd"]}}
    assert config["method"] == "random" and config["run_cap"] == 5 and "early_terminate" not in config
    assert config["command"][-2:] == ["--set=budget.num_samples=5", "${args_json_file}"]


def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path):
    out = tmp_path / "sweep.yaml"
    smoke = "search_spaces/smoke.yaml"
    grid = export(smoke, "--method", "grid", "--out", str(out))
    assert (grid.returncode, grid.stdout) == (2, "")
    assert grid.stderr.strip() == ("error: space.optim.lr: loguniform is continuous; method grid needs a finite set "
                                   "of values (choice, randint, quniform): use method bayes or random")
    unknown = export(smoke, "--method", "hyperopt", "--out", str(out))
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "error: --method hyperopt: unknown (allowed: bayes, "
                                                               "random, grid)")
    engine = export(smoke, "--set", "searcher.algorithm=wandb_grid", "--out", str(out))
    assert engine.returncode == 2 and len(engine.stderr.strip().splitlines()) == 1
    assert "searcher.algorithm" in engine.stderr and "wandb_bayes" in engine.stderr
    assert not out.exists()


def test_an_out_that_cannot_be_a_file_is_one_line(tmp_path):
    """--out in a folder that does not exist is reported, not created (a mistyped folder); onto a folder too."""
    missing = tmp_path / "sweeps" / "sweep.yaml"
    result = export("search_spaces/smoke.yaml", "--out", str(missing))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: --out {missing}: folder {missing.parent} does not exist (create it first)\n"
    assert not missing.parent.exists()
    result = export("search_spaces/smoke.yaml", "--out", str(tmp_path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: --out {tmp_path}: is a folder; give the file to write (e.g. "
                             f"{tmp_path / 'sweep.yaml'})\n")
    assert list(tmp_path.iterdir()) == []


def test_a_grid_cut_short_by_run_cap_says_so(tmp_path):
    """run_cap stays budget.num_samples (the budget the file asks for); a grid with more points gets a warning."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"experiment": "x", "trial": {"epochs": 4}, "space": {
        "model.cnn.blocks": {"type": "randint", "low": 2, "high": 4},
        "augment.erasing": {"type": "quniform", "low": 0.0, "high": 0.2, "q": 0.1}}}))
    cut = export(str(space), "--method", "grid", "--set", "budget.num_samples=4")
    assert cut.returncode == 0 and yaml.safe_load(cut.stdout)["run_cap"] == 4
    assert cut.stderr == ("warning: method grid has 6 points but budget.num_samples (4) caps the sweep at 4 runs "
                          "(run_cap): add --set budget.num_samples=6 to run them all\n")
    whole = export(str(space), "--method", "grid", "--set", "budget.num_samples=6")
    assert (whole.returncode, whole.stderr) == (0, "")


def test_grid_where_every_parameter_is_finite(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"experiment": "x", "trial": {"epochs": 4}, "space": {
        "model.cnn.blocks": {"type": "randint", "low": 2, "high": 4},
        "augment.erasing": {"type": "quniform", "low": 0.0, "high": 0.2, "q": 0.1}}}))
    config = yaml.safe_load(export(str(space), "--method", "grid").stdout)
    assert config["parameters"] == {"model.cnn.blocks": {"values": [2, 3]},
                                    "augment.erasing": {"values": [0.0, 0.1, 0.2]}}


def test_the_engine_proposes_the_same_values_from_the_same_runs_and_seed(tmp_path):
    """Two studies, same seed, same outcomes: the same proposals (W&B bayes, seeded per suggestion); a conditional
    parameter is kept in the engine's values but left out of the trial's where its condition fails."""
    from tune.engines.wandb_sweep import SWEEP_ATTR, SweepSearcher

    search = load_search_file(REPO / "search_spaces" / "smoke.yaml",
                              ["searcher.algorithm=wandb_bayes", "searcher.warm_start=[]"])
    proposals = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        searcher = SweepSearcher(engine_config(search), search.space, search.searcher, metric="val_acc", mode="max",
                                 epochs=3, storage_url=f"sqlite:///{tmp_path / name}/study.db", study_name=name)
        for i in range(4):
            searcher.suggest(f"t{i}")
            for epoch in (1, 2):
                searcher.on_trial_result(f"t{i}", {"val_acc": 0.1 * i + 0.05 * epoch, "epoch": epoch})
            searcher.on_trial_complete(f"t{i}", {"val_acc": 0.3 * i, "epoch": 3 if i % 2 else 2})
        trials = searcher.study.get_trials()
        assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE", "PRUNED", "COMPLETE"]
        for trial in trials:
            values = trial.user_attrs[SWEEP_ATTR]
            assert set(values) == set(search.space)  # the engine's whole vector
            cnn = values["model.name"] == "small_cnn"
            assert ("model.cnn.blocks" in trial.params) == cnn and ("model.cnn.width" in trial.params) == cnn
        proposals.append([t.user_attrs[SWEEP_ATTR] for t in trials])
    assert proposals[0] == proposals[1]
    assert len({str(p) for p in proposals[0]}) == 4


def test_hyperband_schedules_as_wandb_would():
    """The scheduler's decision is sweeps.stop_runs' on the same histories: with min_iter 1, eta 3, a run is
    judged once it has 2 rows, against the top third at row index 1."""
    from ray.tune.schedulers import TrialScheduler

    from tune.schedulers.wandb_hyperband import WandbHyperband

    search = load_search_file(REPO / "search_spaces" / "smoke.yaml", ["budget.scheduler=wandb_hyperband"])
    config = engine_config(search)  # W&B's hyperband under Optuna's TPE: the scheduler alone
    scheduler = WandbHyperband(config, metric="val_acc", mode="max", epochs=3)

    class Trial:  # what the scheduler reads of a Tune trial
        def __init__(self, trial_id):
            self.trial_id, self.status, self.has_reported_at_least_once = trial_id, "RUNNING", False

    good, bad = Trial("good"), Trial("bad")
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)
    decisions = []
    for epoch, (g, b) in enumerate([(0.5, 0.4), (0.7, 0.45)], start=1):
        decisions.append(scheduler.on_trial_result(None, good, {"epoch": epoch, "val_acc": g}))
        decisions.append(scheduler.on_trial_result(None, bad, {"epoch": epoch, "val_acc": b}))
    assert decisions == [TrialScheduler.CONTINUE] * 3 + [TrialScheduler.STOP]
    sweeps = sweeps_module()
    runs = [sweeps.SweepRun(name="good", state="running", sampledHistory=[{"val_acc": 0.5}, {"val_acc": 0.7}]),
            sweeps.SweepRun(name="bad", state="running", sampledHistory=[{"val_acc": 0.4}, {"val_acc": 0.45}])]
    assert [r.name for r in sweeps.stop_runs(config, runs)] == ["bad"]
    validate({k: v for k, v in config.items()})


def test_w_and_b_engines_refuse_several_objectives():
    from train.config import ConfigError

    with pytest.raises(ConfigError, match=r"searcher.algorithm: wandb_bayes optimises one metric \(a W&B Sweep has "
                                          r"one\); a search with objectives uses tpe, nsga2 or random"):
        load_search_file(REPO / "search_spaces" / "smoke_pareto.yaml", ["searcher.algorithm=wandb_bayes"])
