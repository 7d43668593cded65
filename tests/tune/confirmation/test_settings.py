"""The confirm: section and the choice of finalists, without Ray."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from train.config import ConfigError, TrialConfig
from tune.confirmation.finalists import pick_finalists
from tune.confirmation.outcome import decide
from tune.experiment.confirmation import Confirmation, ConfirmRun
from tune.experiment.records import Summary, TrialRecord
from tune.space import load_search_file

SMOKE = REPO / "search_spaces" / "smoke.yaml"


@pytest.mark.parametrize("overrides, line", [
    (["confirm.top_k=2", "confirm.seeds=1"], "confirm: seeds: 1 seed(s) with top_k 2: a confirmation needs 2 or more"),
    (["confirm.top_k=2", "confirm.seeds=[0,5]"], "confirm.seeds: 0 is the search's own training seed (trial.seed)"),
    (["confirm.top_k=2", "confirm.seeds=[3,3]"], "confirm: seeds: [3, 3] repeats a seed"),
    (["confirm.topk=2"], "unknown key 'confirm.topk' (allowed: top_k, seeds)"),
])
def test_a_bad_confirm_section_is_one_line(overrides, line):
    with pytest.raises(ConfigError) as error:
        load_search_file(SMOKE, overrides)
    assert line in str(error.value) and "\n" not in str(error.value)


def test_a_count_gives_seeds_other_than_the_searchs():
    search = load_search_file(SMOKE, ["confirm.top_k=2", "confirm.seeds=3", "trial.seed=7"])
    assert search.confirm.seed_list(search.trial.seed) == [8, 9, 10]
    assert "\nconfirm:" not in load_search_file(SMOKE).dump()  # off: search.yaml reads as before


def _trial(trial_id: str, score, lr: float, status: str = "TERMINATED") -> TrialRecord:
    return TrialRecord(trial_id=trial_id, status=status, params={"optim.lr": lr}, config=TrialConfig(), epochs=2,
                       metrics={"val_acc": score})


def _summary(trials: list[TrialRecord], front=None) -> Summary:
    return Summary(experiment="x", experiment_dir="/x", metric="val_acc", mode="max", best=trials[0], trials=trials,
                   num_trials=len(trials), num_errors=0, total_epochs=0, epochs=2, wall_s=0, interrupted=False,
                   data_fingerprint="f", versions={}, front=front)


def test_finalists_are_the_best_distinct_finished_configurations():
    trials = [_trial("a", 0.7, 0.1), _trial("b", 0.9, 0.2), _trial("c", 0.9, 0.2), _trial("d", 0.95, 0.3, "ERROR"),
              _trial("e", 0.8, 0.4)]
    assert [f.trial_id for f in pick_finalists(_summary(trials), 3)] == ["b", "e", "a"]  # c repeats b's values
    assert [f.trial_id for f in pick_finalists(_summary(trials, front=["e", "a"]), 3)] == ["e", "a"]  # the front


def test_the_winner_is_the_best_mean_and_overlap_is_said():
    def run(i, seed, score):
        return ConfirmRun(trial_id=i, seed=seed, status="TERMINATED", epochs=2, metrics={"val_acc": score})

    finalists = pick_finalists(_summary([_trial("a", 0.95, 0.1), _trial("b", 0.90, 0.2)]), 2)
    finalists[0].runs = [run("a1", 1, 0.80), run("a2", 2, 0.90), run("a3", 3, 0.85)]
    finalists[1].runs = [run("b1", 1, 0.88), run("b2", 2, 0.89), run("b3", 3, 0.87)]
    c = decide(Confirmation(metric="val_acc", mode="max", top_k=2, seeds=[1, 2, 3], status="finished",
                            finalists=finalists), "a", complete=True)
    assert c.winner == "b" and c.ranking == ["b", "a"] and c.raw_winner_confirmed is False
    assert c.distinguishable is False and "not distinguishable at 3 seeds" in c.verdict
    assert c.shipped.trial_id == "b1"  # the median of 0.87, 0.88, 0.89
    assert c.finalist("a").optimism == pytest.approx(0.95 - 0.85)
