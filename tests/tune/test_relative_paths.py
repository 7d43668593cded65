"""Relative paths are the user's: a search and train_model.py started from another directory, with a relative
data root, cache folder and weights folder, train on exactly that data with exactly those weights. Ray runs
every trial and worker in a folder of its own, where the same relative path would point somewhere else."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY_SYNTHETIC
from tests.helpers import kill_group, last_line_path, start_in_session

pytestmark = pytest.mark.slow  # a search and train_model.py, each on a Ray of its own

MODEL = "mobilenetv3_small_050"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working directory away from the repository, holding a weights folder the test made."""
    import timm
    from safetensors.torch import save_file

    folder = tmp_path / "elsewhere"
    (folder / "weights").mkdir(parents=True)
    save_file(timm.create_model(MODEL, pretrained=False).state_dict(), folder / "weights" / f"{MODEL}.safetensors")
    return folder


def _search_file(folder: Path) -> Path:
    search = {
        "experiment": "paths",
        "trial": {"data": {"format": "synthetic", "root": "signs", "cache_dir": "cache", "image_size": 32,
                           "val_fraction": 0.25, "synthetic": TINY_SYNTHETIC},
                  "model": {"name": MODEL, "pretrained": True, "weights": "weights"},
                  "optim": {"batch_size": 32}, "workers": {"threads_per_worker": 1, "cpus_per_worker": 1},
                  "epochs": 1},
        "space": {"optim.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
        "budget": {"num_samples": 2},
        "max_concurrent_trials": 2,
        "wandb": {"enabled": False},
    }
    path = folder / "search.yaml"
    path.write_text(yaml.safe_dump(search))
    return path


def _train_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.is_dir() and p.name.startswith("synthetic-train-"))


def _run(command: list[str], log: Path, env: dict) -> None:
    proc = start_in_session(command, log, env)  # starts in REPO; the command itself changes directory
    try:
        assert proc.wait(timeout=300) == 0, log.read_text()[-4000:]
    finally:
        kill_group(proc)


@pytest.mark.timeout(600)
def test_search_and_train_model_from_another_directory_use_the_users_paths(elsewhere, tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="rp-", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": str(ray_tmp)}
    env.pop("SIGNSEARCH_CACHE", None)
    _search_file(elsewhere)
    search_log = tmp_path / "search.log"
    _run(["bash", "-c", f"cd {elsewhere} && exec {sys.executable} {REPO}/tune/run_search.py --config search.yaml "
                        "--storage runs --address local --num-cpus 2"], search_log, env)
    summary_path = last_line_path(search_log)
    summary = json.loads(summary_path.read_text())
    assert summary_path.is_relative_to(elsewhere / "runs")
    assert summary["num_errors"] == 0 and summary["num_trials"] == 2
    recorded = yaml.safe_load((summary_path.parent / "search.yaml").read_text())
    assert recorded["trial"]["data"]["root"] == str(elsewhere / "signs")
    assert recorded["trial"]["data"]["cache_dir"] == str(elsewhere / "cache")
    assert recorded["trial"]["model"]["weights"] == str(elsewhere / "weights")
    best = yaml.safe_load((summary_path.parent / "best_config.yaml").read_text())
    assert best["data"]["root"] == str(elsewhere / "signs") and best["model"]["weights"] == str(elsewhere / "weights")
    assert (elsewhere / "signs" / "synthetic.json").is_file()
    entries = _train_entries(elsewhere / "cache")
    assert len(entries) == 1, entries  # the driver built it; every trial opened it by its key

    # The same relative settings as a trial config for train_model.py.
    trial = {"data": {"format": "synthetic", "root": "signs", "cache_dir": "cache", "image_size": 32,
                      "val_fraction": 0.25, "synthetic": TINY_SYNTHETIC},
             "model": {"name": MODEL, "pretrained": True, "weights": "weights"}, "epochs": 1,
             "optim": {"batch_size": 32}, "workers": {"threads_per_worker": 1}}
    (elsewhere / "trial.yaml").write_text(yaml.safe_dump(trial))
    train_log = tmp_path / "train.log"
    _run(["bash", "-c", f"cd {elsewhere} && exec {sys.executable} {REPO}/train/train_model.py --config trial.yaml "
                        "--storage runs/train --address local --num-cpus 2"], train_log, env)
    assert last_line_path(train_log).is_relative_to(elsewhere / "runs" / "train")
    assert _train_entries(elsewhere / "cache") == entries

    # Nothing landed in the folders Ray runs trials and workers in.
    strays = [p for p in ray_tmp.rglob("*")
              if p.suffix in (".npy", ".ppm", ".safetensors") or p.name == "synthetic.json"]
    assert not strays, strays[:5]
