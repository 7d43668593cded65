"""A multi-objective search's file and its bad input (one line each, before Ray starts), the latency table's
architectures and one real measurement, and the multi-objective study the searcher keeps. No Ray."""

from __future__ import annotations

import optuna
import pytest
import yaml

from tests.conftest import REPO
from train.config import ConfigError
from tune import preflight
from tune.engines.study import StudySearcher
from tune.experiment.layout import study_url
from tune.latency import architecture_key, architectures, measure_architecture
from tune.objectives import Latency
from tune.space import SearchFile, load_search_file

PARETO = REPO / "search_spaces" / "smoke_pareto.yaml"
TWO = [{"metric": "val_acc", "mode": "max"}, {"metric": "latency_ms", "mode": "min"}]


def _load(tmp_path, **changes):
    raw = yaml.safe_load(PARETO.read_text())
    raw.update(changes)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_search_file(path), path


def test_objectives_set_asha_metric_and_single_objective_files_dump_as_before(tmp_path):
    search, _ = _load(tmp_path)
    assert (search.metric, search.mode) == ("val_acc", "max")
    assert [o.metric for o in search.objective_list] == ["val_acc", "latency_ms"]
    # latency first: ASHA still takes the first objective the loop reports
    search, _ = _load(tmp_path, objectives=[TWO[1], {"metric": "val_loss", "mode": "min"}])
    assert (search.metric, search.mode) == ("val_loss", "min")
    single = load_search_file(REPO / "search_spaces" / "smoke.yaml")
    assert single.objectives is None and "objectives" not in single.dump() and "latency" not in single.dump()


@pytest.mark.parametrize("changes, message", [
    ({"objectives": [TWO[0], {"metric": "latency", "mode": "min"}]},
     "objectives: unknown metric 'latency' (allowed: train_loss, val_loss, val_acc, lr, images_per_s, epoch_s, "
     "latency_ms)"),
    ({"objectives": [TWO[0], {"metric": "latency_ms", "mode": "max"}]},
     "objectives: latency_ms is minimised (a faster model is better): give it mode: min, got mode: max"),
    ({"objectives": [TWO[0], {"metric": "val_acc", "mode": "min"}]},
     "objectives: val_acc named twice; each metric can be one objective only"),
    ({"objectives": TWO, "metric": "val_loss"},
     "metric/mode (val_loss, max) and objectives both given: leave metric and mode out (the first trained "
     "objective, val_acc max, is ASHA's)"),
    ({"objectives": None, "searcher": {"algorithm": "nsga2"}},
     "searcher.algorithm: nsga2 needs objectives (a multi-objective search); use tpe or random for one metric"),
])
def test_bad_objectives_are_one_line(tmp_path, changes, message):
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, **changes)
    assert str(error.value).startswith(f"{tmp_path / 'search.yaml'}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_latency_setting_the_runtime_cannot_honour_is_one_line_before_ray(tmp_path):
    """cuda needs onnxruntime-gpu (not installed here); the search's preflight (tune/preflight.py, run before Ray
    starts; its ConfigError is the CLI's one line and exit 2, as tests/tune/test_preflight.py shows) says so."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    search, path = _load(tmp_path, latency={"execution_provider": "cuda"}, wandb={"enabled": False})
    with pytest.raises(ConfigError) as error:
        preflight.check(search, str(path), str(tmp_path / "runs"))
    assert str(error.value) == (
        f"{path}: latency.execution_provider: 'cuda' is not available in the installed onnxruntime "
        f"{onnxruntime.__version__} (available: cpu; cuda needs onnxruntime-gpu and a GPU)")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_continuous_architecture_parameter_is_refused(tmp_path):
    search, path = _load(tmp_path)
    space = {**yaml.safe_load(PARETO.read_text())["space"],
             "model.cnn.width": {"type": "uniform", "low": 8, "high": 32}}
    search, path = _load(tmp_path, space=space)
    with pytest.raises(ConfigError, match=r"space.model.cnn.width: latency_ms is measured once per architecture "
                                          r"before the trials start, so an architecture parameter must be a "
                                          r"choice or randint \(got uniform\)"):
        preflight.check_latency(search, str(path))


def test_architectures_are_the_distinct_networks_of_the_space(tmp_path):
    search, _ = _load(tmp_path)
    keys = {architecture_key(cfg, 10) for cfg in architectures(search)}
    # small_cnn x 2 widths + 2 MobileNetV3s, each at 2 input sizes; training knobs and `when` add none
    assert len(keys) == 8
    base = search.trial_config({"model.name": "small_cnn", "model.cnn.width": 8, "data.image_size": 32})
    other = search.trial_config({"model.name": "small_cnn", "model.cnn.width": 8, "data.image_size": 32,
                                 "optim.lr": 0.02, "model.cnn.dropout": 0.5})
    assert architecture_key(base, 10) == architecture_key(other, 10) != architecture_key(base, 11)


def test_one_architecture_is_exported_and_timed(tmp_path):
    search, _ = _load(tmp_path)
    cfg = search.trial_config({"model.name": "small_cnn", "model.cnn.width": 4, "data.image_size": 16})
    measured = measure_architecture(cfg, 3, Latency(warmup=2, repeats=5))
    assert 0 < measured["latency_ms"] <= measured["p90_ms"] < 1000
    assert {k: measured["settings"][k] for k in ("batch_size", "threads", "execution_provider", "repeats")} == \
        {"batch_size": 1, "threads": 1, "execution_provider": "cpu", "repeats": 5}


def test_the_multi_objective_study(tmp_path):
    """Directions and names per objective; a finished trial is told both values, an ASHA-stopped one is PRUNED
    without values (off the front), no intermediate values (Optuna's MO samplers take none)."""
    folder = tmp_path / "mo-1"
    folder.mkdir()
    space = {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}}
    for algorithm in ("tpe", "nsga2"):
        search = SearchFile(experiment="mo", space=space, objectives=TWO,
                            searcher={"algorithm": algorithm, "startup_trials": 2})
        name = f"{folder.name}-{algorithm}"
        searcher = StudySearcher(search.space, search.searcher, metric=search.metric, mode=search.mode, epochs=3,
                                 storage_url=study_url(folder), study_name=name, objectives=search.objectives)
        results = {"a": (0.9, 2.0, 3), "b": (0.8, 1.0, 3), "c": (0.7, 3.0, 3), "d": (0.95, 0.5, 1)}
        for trial_id, (acc, latency, epoch) in results.items():
            searcher.suggest(trial_id)
            row = {"val_acc": acc, "latency_ms": latency, "epoch": epoch}
            searcher.on_trial_result(trial_id, row)
            searcher.on_trial_complete(trial_id, row)
        study = optuna.load_study(study_name=name, storage=study_url(folder))
        assert study.metric_names == ["val_acc", "latency_ms"]
        assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
        states = {t.user_attrs["ray_trial_id"]: (t.state.name, t.values, t.intermediate_values) for t in study.trials}
        assert states["a"] == ("COMPLETE", [0.9, 2.0], {}) and states["d"] == ("PRUNED", None, {})
        assert sorted(t.user_attrs["ray_trial_id"] for t in study.best_trials) == ["a", "b"]
        searcher.suggest("e")  # the sampler proposes with a pruned trial in the study
