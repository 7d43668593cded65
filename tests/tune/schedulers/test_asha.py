"""What Tune does not restore, restored: ASHA's rungs (tune/schedulers/asha.py) and a raised sample budget
(tune/resume.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pyarrow.fs
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from train.metrics import REPLAYED
from tune.resume import ExtendableSearch, raise_budget
from tune.schedulers.asha import ResumableASHA


def _trial(trial_id: str, folder, rows: list[dict]):
    """The parts of a restored Tune Trial the scheduler reads: its id, results, folder and file system."""
    (folder / "result.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return SimpleNamespace(trial_id=trial_id, has_reported_at_least_once=bool(rows), path=str(folder),
                           storage=SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem()))


def test_asha_judges_new_trials_against_the_rungs_of_trials_from_before_the_resume(tmp_path):
    settings = dict(metric="val_acc", mode="max", time_attr="epoch", max_t=9, grace_period=1, reduction_factor=3)
    fresh, resumed = ASHAScheduler(**settings), ResumableASHA(**settings)
    for index, value in enumerate([0.9, 0.8, 0.7]):
        folder = tmp_path / f"trial_{index}"
        folder.mkdir()
        old = _trial(str(index), folder, [{"epoch": 1, "val_acc": value}, {"epoch": 2, "val_acc": value}])
        resumed.on_trial_add(None, old)  # Tune adds every restored trial back
    new = _trial("new", tmp_path, [])
    for scheduler in (fresh, resumed):
        scheduler.on_trial_add(None, new)
    weak = {"epoch": 1, "val_acc": 0.5}
    assert fresh.on_trial_result(None, new, weak) == TrialScheduler.CONTINUE  # empty rungs: everything passes
    assert resumed.on_trial_result(None, new, weak) == TrialScheduler.STOP
    # A row reported again from a checkpoint's history (tune/train_relay.py): the trial trained past that epoch,
    # so it was let through then; recorded in the rung, nothing decided now.
    replayed = _trial("replayed", tmp_path / "trial_0", [])
    resumed.on_trial_add(None, replayed)
    assert resumed.on_trial_result(None, replayed, {**weak, REPLAYED: True}) == TrialScheduler.CONTINUE


def test_a_restored_search_takes_a_raised_budget():
    from ray.tune.search.optuna import OptunaSearch

    search = ExtendableSearch(OptunaSearch())
    saved = {"counter": 6, "total_samples": 6, "finished": False, "experiment": None}
    try:
        raise_budget(None)
        search.set_state(dict(saved))
        assert search.total_samples == 6 and search.is_finished()
        raise_budget(10)
        search.set_state(dict(saved))
        assert search.total_samples == 10 and not search.is_finished()
        raise_budget(4)  # never lowered: a budget can only be raised
        search.set_state(dict(saved))
        assert search.total_samples == 6
        # A count saved one behind the trial list (a kill during Tune's copy of its state files): never below it.
        raise_budget(None, restored_trials=6)
        search.set_state({**saved, "counter": 5})
        assert search.is_finished()
    finally:
        raise_budget(None)
