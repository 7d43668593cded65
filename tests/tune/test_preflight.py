"""A search that cannot work stops before Ray starts, with one line and exit 2, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers import dotted, fixed_model_smoke
from tests.helpers.cli import run_main
from train.config import ConfigError
from train.data import DataError
from tune import preflight
from tune.space import load_search_file

SMOKE = REPO / "search_spaces" / "smoke.yaml"


FIXED_MODEL = fixed_model_smoke()


def _search_file(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(SMOKE.read_text())
    for key, value in changes.items():
        if key == "trial":  # section by section, as given
            for section, settings in value.items():
                raw["trial"][section] = {**raw["trial"].get(section, {}), **settings}
        else:  # a space is replaced whole
            raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) and key != "space" else value
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _run(tmp_path: Path, tiny_data: dict, config: Path, *args: str,
         capsys=None) -> subprocess.CompletedProcess:
    """tune/run_search.py with these arguments: its main in this process (every case fails before Ray starts, and
    a fresh interpreter would pay ~3-5 s of imports each), or, without ``capsys``, the real process."""
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    argv = ["--config", str(config), "--storage", str(tmp_path / "runs"), "--address", "local", "--num-cpus", "1",
            "--set", *data, "wandb.enabled=false", *args]
    if capsys is not None:  # with the isolated_hub fixture: an empty hub cache, no weights from the environment
        import ray

        from tune.run_search import main

        result = run_main(main, argv, capsys)
        assert not ray.is_initialized(), "Ray was started"
        return result
    # An empty hub cache and no network: pretrained weights are unavailable unless given as a file.
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch"),
           "HF_HUB_OFFLINE": "1"}
    env.pop("SIGNSEARCH_WEIGHTS", None)
    command = [sys.executable, str(REPO / "tune" / "run_search.py"), *argv]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr[-3000:]
    assert "Ray dashboard" not in result.stdout, "Ray was started"
    return errors[0]


CASES = {  # search-file changes, extra CLI arguments, what the one line says
    "unknown base model": ({"trial": {"model": {"name": "notamodel"}}, "space": FIXED_MODEL["space"],
                            "searcher": FIXED_MODEL["searcher"]}, [],
                           "trial.model.name: unknown model 'notamodel'"),
    "metric not reported": ({"metric": "val_accc"}, [],
                            "metric: 'val_accc' is not a metric the training loop reports (allowed: train_loss, "
                            "val_loss, val_acc,"),
    "no pretrained weights": ({"trial": {"model": {"name": "mobilenetv3_small_050", "pretrained": True}},
                               "space": FIXED_MODEL["space"], "searcher": FIXED_MODEL["searcher"]}, [],
                              "model.weights: no ImageNet weights for mobilenetv3_small_050 (HF_HUB_OFFLINE is set"),
    "num-samples 0": ({}, ["--num-samples", "0"], "budget.num_samples: got 0, allowed: >= 1"),
    "fixed and searched": ({}, ["--set", "trial.model.name=x"],
                           "trial.model.name is fixed ('x') and searched by space.model.name: remove it from one of "
                           "the two"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_search_that_cannot_work_is_one_line_before_ray(case, tmp_path, tiny_data, isolated_hub, capsys):
    changes, args, expected = CASES[case]
    config = _search_file(tmp_path, **changes)
    started = time.monotonic()
    result = _run(tmp_path, tiny_data, config, *args, capsys=capsys)
    line = _one_error_line(result)
    assert expected in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "an experiment was created"
    with capsys.disabled():
        print(f"{case}: {time.monotonic() - started:.1f} s: {line}")


@pytest.mark.slow
def test_a_search_that_cannot_work_exits_2_as_a_process(tmp_path, tiny_data):
    """The CLI as users run it (a fresh interpreter, the hub's own cache settings): one line, exit 2, no Ray."""
    changes, args, expected = CASES["unknown base model"]
    line = _one_error_line(_run(tmp_path, tiny_data, _search_file(tmp_path, **changes), *args))
    assert expected in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "an experiment was created"


@pytest.mark.parametrize("flag, value, expected", [
    ("--dashboard-port", "70000", "error: --dashboard-port 70000: a TCP port is 1 to 65535 (or leave it out: 8265, "
                                  "or the next free port)"),
    ("--dashboard-port", "0", "error: --dashboard-port 0: a TCP port is 1 to 65535"),
])
def test_a_port_out_of_range_is_one_line_before_anything_starts(flag, value, expected, tmp_path, tiny_data, capsys):
    """Was an OverflowError traceback from deep in Ray's start-up, exit 1, an empty experiment folder left."""
    line = _one_error_line(_run(tmp_path, tiny_data, SMOKE, flag, value, capsys=capsys))
    assert line.startswith(expected), line
    assert not (tmp_path / "runs").exists(), "an experiment folder was created"


def test_duplicate_keys_are_one_line_naming_the_key_and_both_lines(tmp_path, tiny_data, capsys):
    """PyYAML keeps the last of two equal keys without a word: a search nobody asked for."""
    text = SMOKE.read_text()
    budget = text.replace("  num_samples: 8\n", "  num_samples: 8\n  num_samples: 2\n", 1)
    assert budget != text
    twice = tmp_path / "twice.yaml"
    twice.write_text(budget)
    line_no = text.splitlines().index("  num_samples: 8") + 1
    assert _one_error_line(_run(tmp_path, tiny_data, twice, capsys=capsys)) == (
        f"error: {twice}: key 'num_samples' appears twice in one mapping (lines {line_no} and {line_no + 1}): "
        "keep one")
    # Across lines, at the top level.
    twice.write_text(text + "experiment: other\n")
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("experiment:"))
    assert _one_error_line(_run(tmp_path, tiny_data, twice, capsys=capsys)) == (
        f"error: {twice}: key 'experiment' appears twice in one mapping (lines {first} and "
        f"{len(text.splitlines()) + 1}): keep one")
    assert not (tmp_path / "runs").exists(), "an experiment folder was created"


def test_unwritable_storage_and_cache_are_one_line(tmp_path, tiny_data, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _one_error_line(_run(tmp_path, tiny_data, SMOKE, "--storage", str(blocker / "runs"), capsys=capsys))
    assert line == (f"error: --storage: {blocker / 'runs'} is not a writable folder (Not a directory); "
                    "allowed: a folder this user can create files in")
    line = _one_error_line(_run(tmp_path, tiny_data, SMOKE, f"trial.data.cache_dir={blocker / 'cache'}",
                                capsys=capsys))
    assert line.startswith(f"error: data.cache_dir (or $SIGNSEARCH_CACHE): {blocker / 'cache'} is not a writable")


def test_every_model_a_choice_can_sample_is_checked(tmp_path):
    choice = {"type": "choice", "values": ["small_cnn", "mobilenetv3_smal_050"]}
    path = _search_file(tmp_path, space={"model.name": choice})
    with pytest.raises(ConfigError) as error:
        preflight.check(load_search_file(path), str(path), str(tmp_path / "runs"))
    assert str(error.value).startswith(f"{path}: space.model.name: unknown model 'mobilenetv3_smal_050'; "
                                       "did you mean mobilenetv3_small_050")


def test_missing_data_root_is_checked_without_decoding(tmp_path):
    search = load_search_file(SMOKE, [f"trial.data.root={tmp_path / 'nowhere'}", "trial.data.format=imagefolder"])
    with pytest.raises(DataError, match="does not exist"):
        preflight.check(search, str(SMOKE), str(tmp_path / "runs"))


def test_bad_data_is_one_line_before_ray(tmp_path, capsys):
    """An ImageFolder of one class (the search would report val_acc 1.0) and a GTSRB CSV with a quote
    left open: exit 2, one line naming what and where, no Ray, no experiment folder."""
    from tests.helpers.layouts import write_gtsrb, write_imagefolder

    write_imagefolder(tmp_path / "one", classes=("only",))
    result = _run(tmp_path, {"format": "imagefolder", "root": str(tmp_path / "one")}, SMOKE, capsys=capsys)
    assert _one_error_line(result).endswith("the imagefolder training set has 1 class (only); a classifier needs "
                                            "at least 2")
    write_gtsrb(tmp_path / "gtsrb")
    gt = tmp_path / "gtsrb" / "GTSRB" / "Final_Training" / "Images" / "00000" / "GT-00000.csv"
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join([lines[0], '"' + lines[1], *lines[2:]]) + "\n")
    result = _run(tmp_path, {"format": "gtsrb", "root": str(tmp_path / "gtsrb")}, SMOKE, capsys=capsys)
    assert _one_error_line(result) == (f"error: {gt} line 2: a quote (\") is not closed, so the row runs on to "
                                       f"line {len(lines)}; fix or remove the quote")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
