"""train/train_model.py's --config: a trial config file, or a search file's trial section, keys as the file writes
them."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO
from train.config import ConfigError, parse
from train.train_model import load_trial_config

SMOKE = REPO / "search_spaces" / "smoke.yaml"


def test_a_search_file_trains_its_trial_section():
    cfg = load_trial_config(str(SMOKE), ["trial.model.name=small_cnn", "trial.optim.lr=0.003"])
    raw = yaml.safe_load(SMOKE.read_text())["trial"]
    assert (cfg.model.name, cfg.optim.lr, cfg.epochs) == ("small_cnn", 0.003, raw["epochs"])
    assert cfg.data.root == str(REPO / raw["data"]["root"])  # relative to where the command runs (here REPO)


def test_keys_are_the_files_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^--set 'optim.lr=0.1': .* is a search file, .* set trial.<key>"):
        load_trial_config(str(SMOKE), ["optim.lr=0.1"])
    with pytest.raises(ConfigError, match=r"smoke.yaml: trial.optim.lr: got -1.0, allowed: > 0$"):
        load_trial_config(str(SMOKE), ["trial.optim.lr=-1"])
    trial = tmp_path / "best_config.yaml"
    trial.write_text(yaml.safe_dump(parse({"epochs": 2}).to_dict()))
    assert load_trial_config(str(trial), ["optim.lr=0.01"]).optim.lr == 0.01
    with pytest.raises(ConfigError, match=r"best_config.yaml: unknown key 'optim.lrr' \(allowed: optimizer, lr,"):
        load_trial_config(str(trial), ["optim.lrr=0.01"])
