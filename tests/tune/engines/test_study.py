"""The searcher's Optuna study (contract B): what a real Tune run with ASHA leaves in study.db, and how a
resumed search reattaches to it. Real Ray, real SQLite; the trainable is a formula, not a model."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import optuna
import pytest
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from train.config import ConfigError
from tune.engines.study import TRIAL_ATTR, StudySearcher
from tune.engines.tpe import tpe_options
from tune.experiment.layout import study_url
from tune.space import SearchFile, load_search_file

BEST_LR = 10 ** -2.5
FAILING_LR = 0.0123
SPACE = {
    "optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
    "model.name": {"type": "choice", "values": ["small_cnn", "mobilenetv3_small_050"]},
    "model.cnn.blocks": {"type": "randint", "low": 2, "high": 5, "when": {"model.name": "small_cnn"}},
}


def _search(**searcher) -> SearchFile:
    return SearchFile(experiment="unit", space=SPACE, searcher={"seed": 0, "startup_trials": 2, **searcher})


def _searcher(folder: Path, search: SearchFile, epochs: int = 4, concurrency: int = 1) -> StudySearcher:
    return StudySearcher(search.space, search.searcher, metric="val_acc", mode="max", epochs=epochs,
                         storage_url=study_url(folder), study_name=folder.name, concurrency=concurrency)


def _accuracy(lr: float, epoch: int) -> float:
    """Highest at BEST_LR, rising by 0.01 an epoch: the warm-start trial beats every other at every rung."""
    return 0.9 - 0.1 * abs(math.log10(lr) + 2.5) + 0.01 * epoch


def _trainable(config: dict) -> None:
    lr = config["optim"]["lr"]
    if lr == FAILING_LR:
        raise RuntimeError("this configuration fails")
    for epoch in range(1, config["epochs"] + 1):
        tune.report({"val_acc": _accuracy(lr, epoch), "epoch": epoch})


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # a Ray in this process
def test_a_tune_run_with_asha_leaves_contract_b_in_study_db(local_ray, tmp_path):
    folder = tmp_path / "unit-20990101-000000"
    search = _search(warm_start=[{"optim.lr": BEST_LR, "model.name": "small_cnn"}, {"optim.lr": FAILING_LR}])
    searcher = _searcher(folder, search)
    folder.mkdir()
    searcher.open()  # as the search does before Tune starts
    tuner = tune.Tuner(
        _trainable, param_space={"epochs": 4, "optim": {"lr": 0.0}, "model": {"name": "small_cnn"}},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=4, max_concurrent_trials=1,
                                    trial_dirname_creator=lambda trial: trial.trial_id,
                                    scheduler=ASHAScheduler(metric="val_acc", mode="max", time_attr="epoch",
                                                            max_t=4, grace_period=1, reduction_factor=2)),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="unit", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)))
    results = tuner.fit()
    tune_ids = {Path(result.path).name for result in results}  # trial folders are named by trial id
    assert len(tune_ids) == 4

    study = optuna.load_study(study_name=None, storage=study_url(folder))  # one study in the file
    assert study.study_name == folder.name and study.metric_names == ["val_acc"]
    trials = study.trials
    assert len(trials) == 4
    by_state = {state: [t for t in trials if t.state.name == state] for state in ("COMPLETE", "PRUNED", "FAIL")}
    # Warm-start points first, in order: the best configuration runs every epoch, the failing one fails.
    assert trials[0].params == {"optim.lr": BEST_LR, "model.name": "small_cnn",
                                "model.cnn.blocks": trials[0].params["model.cnn.blocks"]}
    assert trials[0].state.name == "COMPLETE" and trials[0].value == pytest.approx(_accuracy(BEST_LR, 4))
    assert trials[1].params["optim.lr"] == FAILING_LR and trials[1].state.name == "FAIL"
    assert trials[1].value is None
    # Every other trial is worse than the first at epoch 1, so ASHA stopped it at its first rung: PRUNED,
    # with its epoch-1 value as intermediate value and as its value (Optuna's pruned-trial convention).
    assert [t.number for t in by_state["PRUNED"]] == [2, 3]
    for trial in trials:
        tune_id = trial.user_attrs[TRIAL_ATTR]
        lr = trial.params["optim.lr"]
        assert tune_id in tune_ids
        # Dotted names, `when` honoured: blocks only where model.name is small_cnn.
        assert ("model.cnn.blocks" in trial.params) == (trial.params.get("model.name", "small_cnn") == "small_cnn")
        if trial.state.name == "FAIL":
            continue
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, (4 if trial.state.name == "COMPLETE" else 1) + 1))
        assert trial.intermediate_values[steps[-1]] == pytest.approx(_accuracy(lr, steps[-1]))
        assert trial.value == pytest.approx(_accuracy(lr, steps[-1]))


def test_a_resumed_searcher_reattaches_to_the_study_and_fails_trials_tune_never_saw(tmp_path):
    """What Tuner.restore does: unpickle the searcher as tuner.pkl holds it, then restore() its last state."""
    folder = tmp_path / "unit-20990101-000000"
    folder.mkdir()
    first = _searcher(folder, _search(), epochs=3, concurrency=2)
    pickled_at_start = pickle.dumps(first)  # tuner.pkl is written before the first suggestion
    first.suggest("aaaa0001"), first.suggest("aaaa0002")
    for epoch in (1, 2):
        first.on_trial_result("aaaa0001", {"val_acc": 0.1 * epoch, "epoch": epoch})
    first.on_trial_complete("aaaa0001", {"val_acc": 0.2, "epoch": 2})  # stopped before epoch 3: PRUNED
    first.on_trial_result("aaaa0002", {"val_acc": 0.3, "epoch": 1})
    first.save(str(tmp_path / "searcher-state.pkl"))  # Tune's last saved state knows these two trials
    first.suggest("aaaa0003")  # proposed after it: the driver dies before Tune saves again
    assert b"sqlalchemy" not in pickle.dumps(first)  # the study is never pickled

    resumed = pickle.loads(pickled_at_start)
    resumed.restore(str(tmp_path / "searcher-state.pkl"))
    # The interrupted trial continues from its checkpoint: epoch 1 again (not stored twice), then on to the end.
    for epoch in (1, 2):
        resumed.on_trial_result("aaaa0002", {"val_acc": 0.3 + 0.1 * (epoch - 1), "epoch": epoch})
    resumed.on_trial_complete("aaaa0002", {"val_acc": 0.5, "epoch": 3})
    fourth = resumed.suggest("aaaa0004")
    assert fourth is not None

    study = optuna.load_study(study_name=folder.name, storage=study_url(folder))
    trials = {t.user_attrs[TRIAL_ATTR]: t for t in study.trials}
    assert [t.number for t in study.trials] == [0, 1, 2, 3]  # one study, numbering continued
    assert trials["aaaa0001"].state.name == "PRUNED" and trials["aaaa0001"].value == pytest.approx(0.2)
    assert trials["aaaa0001"].intermediate_values == {1: 0.1, 2: 0.2}
    assert trials["aaaa0002"].state.name == "COMPLETE" and trials["aaaa0002"].value == pytest.approx(0.5)
    assert trials["aaaa0002"].intermediate_values == {1: 0.3, 2: pytest.approx(0.4), 3: 0.5}
    assert trials["aaaa0003"].state.name == "FAIL" and "orphaned" in trials["aaaa0003"].user_attrs
    assert trials["aaaa0004"].state.name == "RUNNING"
    assert _sampled(fourth) == trials["aaaa0004"].params


def _sampled(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_sampled(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_tpe_settings_follow_the_search_file():
    conditional = _search()  # model.cnn.blocks has a `when`: its parameter set differs between trials
    assert tpe_options(conditional.searcher, conditional.space, concurrency=2) == {
        "n_startup_trials": 2, "multivariate": True, "group": True, "constant_liar": True}
    flat = SearchFile(experiment="unit", space={"optim.lr": SPACE["optim.lr"]})
    assert tpe_options(flat.searcher, flat.space, concurrency=1) == {
        "n_startup_trials": 4, "multivariate": True, "group": False, "constant_liar": False}
    fixed = _search(multivariate=False, group=False, constant_liar=True)
    assert tpe_options(fixed.searcher, fixed.space, concurrency=1)["constant_liar"] is True


def test_group_without_multivariate_is_one_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("experiment: x\nsearcher: {multivariate: false, group: true}\n")
    with pytest.raises(ConfigError, match=r"space.yaml: searcher: group: true needs multivariate: true"):
        load_search_file(path)


def test_random_search_starts_with_the_warm_start_points(tmp_path):
    folder = tmp_path / "unit-20990101-000000"
    folder.mkdir()
    search = _search(algorithm="random", warm_start=[{"optim.lr": 0.002, "model.name": "mobilenetv3_small_050"}])
    searcher = _searcher(folder, search)
    first, second = searcher.suggest("bbbb0001"), searcher.suggest("bbbb0002")
    assert first == {"optim": {"lr": 0.002}, "model": {"name": "mobilenetv3_small_050"}}  # `when` left out blocks
    assert second != first
    assert isinstance(searcher.study.sampler, optuna.samplers.RandomSampler)
