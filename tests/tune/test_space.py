"""Search-space YAML: every shipped file loads, and every kind of mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from tests.helpers import dotted as leaves
from train.config import ConfigError, absolute_paths, parse
from tune.distributions import define_by_run, sampled_params
from tune.space import load_search_file

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "search_spaces").glob("*.yaml")) + sorted((REPO / "bench").glob("*.yaml"))


def test_every_space_is_shipped():
    assert {p.stem for p in SHIPPED} >= {"smoke", "gtsrb", "asl"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_space_loads_and_samples(path):
    search = load_search_file(path)
    base = search.trial_config({})
    # The trial section is a trial config as train/train_model.py reads one (paths made absolute on load).
    raw = yaml.safe_load(path.read_text())["trial"]
    assert base == parse(absolute_paths(raw, Path.cwd()))
    assert not set(search.space) & {key for key, _ in leaves(raw)}, "a searched key is also fixed"
    assert load_search_file(_dumped(path.parent, search)) == search  # search.yaml reads back the same
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):  # each sample must be a valid trial config
        trial = study.ask()
        sampled = define_by_run(search.space)(trial)
        assert sampled == trial.params  # Optuna's parameter names are the dotted config keys
        search.trial_config(sampled)
        study.tell(trial, 0.5)


def test_override_points_a_space_at_an_archive():
    search = load_search_file(REPO / "search_spaces/gtsrb.yaml",
                              ["trial.data.format=gtsrb_kaggle", "trial.data.root=/data/gtsrb", "budget.num_samples=3"])
    cfg = search.trial_config({})
    assert (cfg.data.format, cfg.data.root, search.budget.num_samples) == ("gtsrb_kaggle", "/data/gtsrb", 3)


def test_conditional_parameter_only_when_condition_holds():
    search = load_search_file(REPO / "search_spaces/gtsrb.yaml")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    seen_frozen = seen_unfrozen = False
    for _ in range(40):
        trial = study.ask()
        define_by_run(search.space)(trial)
        params = trial.params
        frozen = params.get("model.freeze_backbone") is True
        assert ("model.unfreeze_epoch" in params) == frozen
        if "model.freeze_backbone" in params:
            assert params["model.pretrained"] is True
        seen_frozen |= frozen
        seen_unfrozen |= not frozen
        study.tell(trial, 0.0)
    assert seen_frozen and seen_unfrozen


def test_sampled_params_reads_nested_config():
    search = load_search_file(REPO / "search_spaces/smoke.yaml")
    config = search.trial_config({"model.name": "small_cnn", "optim.lr": 0.01, "model.cnn.width": 16}).to_dict()
    params = sampled_params(config, search.space)
    assert params["optim.lr"] == 0.01 and params["model.cnn.width"] == 16
    # A parameter whose `when` does not hold was not sampled: its config value is a default, not a choice.
    other = search.trial_config({"model.name": "mobilenetv3_small_050", "optim.lr": 0.01}).to_dict()
    assert "model.cnn.width" not in sampled_params(other, search.space)


def _dumped(folder: Path, search) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "search.yaml"
    path.write_text(search.dump())
    return path


def test_a_setting_both_fixed_and_searched_is_one_line():
    with pytest.raises(ConfigError) as error:
        load_search_file(REPO / "search_spaces/smoke.yaml", ["trial.model.name=notamodel"])
    assert str(error.value) == (f"{REPO / 'search_spaces/smoke.yaml'}: trial.model.name is fixed ('notamodel') and "
                                "searched by space.model.name: remove it from one of the two (from trial to search "
                                "it, from space to fix it)")
    with pytest.raises(ConfigError, match=r"trial\.model\.cnn\.width is fixed \(8\) and searched by space\.model\.cnn"):
        load_search_file(REPO / "search_spaces/smoke.yaml", ["trial.model.cnn={width: 8}"])


def _write(tmp_path, text_or_dict) -> Path:
    path = tmp_path / "space.yaml"
    base = yaml.safe_load((REPO / "search_spaces/smoke.yaml").read_text())
    if isinstance(text_or_dict, str):
        path.write_text(text_or_dict)
        return path
    for dotted, value in text_or_dict.items():
        node = base
        *parents, leaf = dotted.split("|")
        for part in parents:
            node = node.setdefault(part, {})
        if value is _DELETE:
            node.pop(leaf)
        else:
            node[leaf] = value
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


_DELETE = object()

BAD = {
    "unknown top key": ({"budgets": {}}, "unknown key 'budgets' (allowed: experiment, trial, space, budget"),
    "unknown budget key": ({"budget|max_epochs": 3}, "unknown key 'budget.max_epochs' (allowed: num_samples, "
                                                     "grace_period"),
    "wrong type": ({"budget|num_samples": "many"}, "budget.num_samples: Input should be a valid integer"),
    "empty range": ({"space|optim.lr": {"type": "loguniform", "low": 0.1, "high": 0.01}},
                    "space.optim.lr: empty range: low (0.1) must be below high (0.01)"),
    "empty randint": ({"space|model.cnn.blocks": {"type": "randint", "low": 3, "high": 3}},
                      "space.model.cnn.blocks: empty range"),
    "log of zero": ({"space|optim.lr": {"type": "loguniform", "low": 0, "high": 0.01}}, "loguniform needs low > 0"),
    "unknown distribution": ({"space|optim.lr": {"type": "gaussian", "low": 0, "high": 1}},
                             "type must be one of loguniform, uniform, quniform, randint, choice"),
    "unknown param field": ({"space|optim.lr": {"type": "uniform", "low": 0.1, "high": 0.2, "log": True}},
                            "unknown key 'space.optim.lr.log' (allowed: when, low, high, type)"),
    "empty choice": ({"space|model.cnn.width": {"type": "choice", "values": []}}, "space.model.cnn.width.values"),
    "param not a config key": ({"space|optim.learning_rate": {"type": "uniform", "low": 0.1, "high": 0.2}},
                               "space.optim.learning_rate: value 0.1 is not a valid config: unknown key"),
    "param value out of range": ({"space|augment.geometric": {"type": "uniform", "low": 0.0, "high": 2.0}},
                                 "space.augment.geometric: value 2.0 is not a valid config: "
                                 "augment.geometric: got 2.0"),
    "when names a later param": ({"space|optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2,
                                                      "when": {"augment.geometric": 0.1}}},
                                 "space.optim.lr.when: 'augment.geometric' must be a parameter listed earlier"),
    "warm start unknown": ({"searcher|warm_start": [{"optim.lrr": 0.1}]},
                           "searcher.warm_start[0]: unknown parameter(s) optim.lrr"),
    "old section": ({"dataset": {"root": "x"}}, "unknown key 'dataset' (allowed: experiment, trial, space"),
    "data unknown key": ({"trial|data|rooot": "x"}, "unknown key 'trial.data.rooot' (allowed: format, root,"),
    "data bad format": ({"trial|data|format": "coco"}, "trial.data.format: Input should be 'auto'"),
    "trial bad value": ({"trial|optim|batch_size": 0}, "trial.optim.batch_size: got 0, allowed: >= 1"),
    "trial nested bad value": ({"trial|data|synthetic|num_classes": 1},
                               "trial.data.synthetic.num_classes: got 1, allowed: 2..43"),
    "trial bad epochs": ({"trial|epochs": 0}, "trial.epochs: got 0, allowed: >= 1"),
    "trial several workers on a GPU fraction": ({"trial|workers": {"num_workers": 2, "gpus_per_worker": 0.5}},
                                                "trial.workers.gpus_per_worker: got 0.5, "
                                                "allowed: 0 or 1 with several workers"),
    "fixed and searched": ({"trial|optim|lr": 0.01}, "trial.optim.lr is fixed (0.01) and searched by space.optim.lr"),
    "grace beyond budget": ({"budget|grace_period": 99}, "budget.grace_period (99) exceeds trial.epochs (8)"),
    "bad experiment name": ({"experiment": "my search"}, "experiment: String should match pattern"),
    "missing experiment": ({"experiment": _DELETE}, "experiment: Field required"),
    "concurrency zero": ({"max_concurrent_trials": 0}, "max_concurrent_trials must be >= 1 or 'auto'"),
    "tpe setting under wandb_bayes": ({"searcher|algorithm": "wandb_bayes", "searcher|multivariate": False},
                                      "searcher.multivariate: false is a TPE setting that wandb_bayes (W&B's engine) "
                                      "does not use: leave it at true or use algorithm tpe"),
    "tpe setting under wandb_random": ({"searcher|algorithm": "wandb_random", "searcher|constant_liar": True},
                                       "searcher.constant_liar: true is a TPE setting that wandb_random"),
    "group under wandb_bayes": ({"searcher|algorithm": "wandb_bayes", "searcher|group": False},
                                "searcher.group: false is a TPE setting that wandb_bayes"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_space_is_one_clear_line(tmp_path, name):
    changes, expected = BAD[name]
    path = _write(tmp_path, changes)
    with pytest.raises(ConfigError) as error:
        load_search_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_bad_yaml_and_missing_file(tmp_path):
    path = _write(tmp_path, "experiment: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+"):
        load_search_file(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_search_file(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_search_file(REPO / "search_spaces/smoke.yaml", ["budget.num_samples"])


def test_settings_the_search_ignores_are_one_warning_line_each(capsys):
    """Made by the documented engine comparisons (a TPE space switched to W&B's engine, the no-early-stopping
    baseline of a W&B hyperband space): they load, each ignored setting named on stderr."""
    smoke = REPO / "search_spaces/smoke.yaml"
    search = load_search_file(smoke, ["searcher.algorithm=wandb_bayes", "budget.scheduler=wandb_hyperband",
                                      "budget.early_stopping=false"])
    assert search.searcher.startup_trials == 3  # smoke.yaml's, for its TPE
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {smoke}: searcher.startup_trials (3) is a TPE setting: wandb_bayes (W&B's engine) does not use it",
        f"warning: {smoke}: budget.scheduler: wandb_hyperband stops no trial with budget.early_stopping: false "
        "(every trial runs to trial.epochs)"]
    load_search_file(smoke, ["searcher.algorithm=wandb_bayes", "searcher.startup_trials=4"])  # the default: silent
    load_search_file(smoke)
    assert capsys.readouterr().err == ""


def test_a_space_parameter_is_overridden_in_part_or_whole():
    """Space keys are dotted themselves: --set space.optim.lr.high=0.1 is the `high` of parameter optim.lr."""
    smoke = REPO / "search_spaces/smoke.yaml"
    lr = load_search_file(smoke, ["space.optim.lr.high=0.1"]).space["optim.lr"]
    assert (lr.type, lr.low, lr.high) == ("loguniform", 3e-4, 0.1)
    whole = load_search_file(smoke, ["space.optim.lr={type: uniform, low: 0.001, high: 0.1}"]).space
    assert (whole["optim.lr"].type, whole["optim.lr"].high, list(whole)) == ("uniform", 0.1, list(space_keys(smoke)))
    added = load_search_file(smoke, ["space.optim.momentum={type: uniform, low: 0.8, high: 0.99}"]).space
    assert list(added)[-1] == "optim.momentum"
    with pytest.raises(ConfigError) as error:
        load_search_file(smoke, ["space.optim.wd.high=0.1"])
    assert str(error.value) == (
        "--set 'space.optim.wd.high=0.1': space has no entry 'optim.wd.high' nor one it starts with (entries: "
        f"{', '.join(space_keys(smoke))}); a new entry is given whole, e.g. --set "
        "'space.optim.lr={type: loguniform, low: 1.0e-4, high: 0.1}'")
    with pytest.raises(ConfigError, match=r"space\.optim\.lr: empty range: low \(0\.0003\) must be below high"):
        load_search_file(smoke, ["space.optim.lr.high=1e-5"])


def space_keys(path: Path) -> list[str]:
    return list(yaml.safe_load(path.read_text())["space"])


def test_every_set_example_of_the_search_help_is_a_key_it_takes(capsys):
    import re

    from tune.run_search import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    examples = re.findall(r"\b([a-z_]+(?:\.[a-z_]+)+=\S+?)[,;)]?(?:\s|$)", text)
    assert "trial.workers.fake_gpus=true" in examples and len(examples) >= 3, examples
    for example in examples:
        example = re.sub(r"=[A-Z]+$", "=2", example)  # a placeholder (budget.num_samples=N)
        load_search_file(REPO / "search_spaces/smoke.yaml", [example])
