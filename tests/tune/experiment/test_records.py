"""The experiment folder's typed files: written and read back the same, anything else one clear line."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml

from tests.conftest import REPO
from train.config import parse
from tune.experiment import layout
from tune.experiment.records import ExperimentError, Summary, TrialRecord, open_experiment, read_search
from tune.experiment.storage import Experiment
from tune.space import load_search_file


def _summary(experiment: Experiment) -> Summary:
    trial = TrialRecord(trial_id="a1", status="TERMINATED", params={"optim.lr": 0.01},
                        config=parse({"optim": {"lr": 0.01}, "epochs": 3}), epochs=3,
                        metrics={"val_acc": 0.5, "epoch": 3, "val_loss": None}, path="trial_a1",
                        checkpoint="trial_a1/checkpoint_000002")
    return Summary(experiment="smoke", experiment_dir=experiment.uri, metric="val_acc", mode="max", best=trial,
                   trials=[trial], num_trials=1, num_errors=0, total_epochs=3, epochs=3, wall_s=1.5,
                   interrupted=False, data_fingerprint="f" * 64, versions={"ray": "2.60.0"})


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "uri"])
def test_summary_and_search_round_trip(tmp_path, as_uri):
    experiment = Experiment.create(f"file://{tmp_path}" if as_uri else str(tmp_path), "smoke-1")
    search = load_search_file(REPO / "search_spaces" / "smoke.yaml")
    experiment.write_text(layout.SEARCH_FILE, search.dump())
    summary = _summary(experiment)
    written = summary.write(experiment)
    assert written == experiment.child(layout.SUMMARY_FILE)
    assert Summary.read(experiment.uri) == summary and read_search(experiment) == search
    assert json.loads((tmp_path / "smoke-1" / layout.SUMMARY_FILE).read_text())["best"]["metrics"]["epoch"] == 3
    best = yaml.safe_load((tmp_path / "smoke-1" / layout.BEST_CONFIG_FILE).read_text())
    assert parse(best) == summary.best.config  # best_config.yaml is a trial config train_model.py reads
    assert experiment.resolve(summary.best.checkpoint) == experiment.child("trial_a1", "checkpoint_000002")


def test_what_is_not_an_experiment_of_this_version_is_one_line(tmp_path):
    with pytest.raises(ExperimentError, match=r"no such folder$"):
        open_experiment(str(tmp_path / "absent"))
    (tmp_path / "photos").mkdir()
    with pytest.raises(ExperimentError, match=r"photos: not an experiment folder \(no summary.json or search.yaml"):
        open_experiment(str(tmp_path / "photos"))
    experiment = Experiment.create(str(tmp_path), "smoke-1")
    experiment.write_text(layout.SEARCH_FILE, "experiment: smoke\n")
    with pytest.raises(ExperimentError, match=r"no summary.json: the search never finished; continue it with "
                                              r"python tune/run_search.py --config .*search.yaml --resume "):
        open_experiment(experiment.uri)
    older = _summary(experiment).model_dump(mode="json")
    older["max_epochs"] = older.pop("epochs")  # as the version before this one wrote it
    experiment.write_text(layout.SUMMARY_FILE, json.dumps(older))
    with pytest.raises(ExperimentError) as error:
        Summary.read(experiment.uri)
    assert str(error.value) == (f"{experiment.child(layout.SUMMARY_FILE)}: not written by this version of "
                                "signsearch (epochs: Field required); experiments of earlier versions cannot be "
                                "read: search again")
    experiment.write_text(layout.SUMMARY_FILE, '{"experiment": ')
    with pytest.raises(ExperimentError, match=r"summary.json: not valid JSON \(.*\); cut off while written\?$"):
        Summary.read(experiment.uri)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_the_experiments_files_honour_the_umask(tmp_path, umask):
    """One policy: summary.json, best_config.yaml, search.yaml and run.json get 0o666 less the umask like every
    other file (they were 0600, from mkstemp, while study.db and the checkpoints were 0644): teammates on shared
    storage can analyse and export a search."""
    from tune.experiment.records import RunRecord

    previous = os.umask(umask)
    try:
        experiment = Experiment.create(str(tmp_path), "smoke-1")
        experiment.write_text(layout.SEARCH_FILE, load_search_file(REPO / "search_spaces" / "smoke.yaml").dump())
        _summary(experiment).write(experiment)
        RunRecord(data_fingerprint="f" * 64).write(experiment)
        written = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "smoke-1").iterdir()}
    finally:
        os.umask(previous)
    assert set(written) >= {layout.SEARCH_FILE, layout.SUMMARY_FILE, layout.BEST_CONFIG_FILE, layout.RUN_FILE}
    assert written == dict.fromkeys(written, 0o666 & ~umask)
