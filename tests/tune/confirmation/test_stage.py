"""The confirmation stage end to end, on ONE shared search (module fixture): the smoke space on the tiny synthetic set,
2 trials, 2 finalists x 2 seeds, 2 epochs. Its driver is killed (SIGKILL of its process group) when the third
confirmation run starts, at the ``confirm_started`` hold point, and the search is resumed; every other test reads the
experiment that resume finished (summary, best_config.yaml, Optuna, export, report)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from infra import hold
from tests.helpers import kill_group, last_line_path, trained_rows, wait_held
from tests.helpers.cli import run_main
from tests.helpers.search import epochs_of, search_args, search_to_the_end, start_search
from tune.confirmation.stats import spread

SETTINGS = ("budget.num_samples=2", "trial.epochs=2", "budget.grace_period=1", "confirm.top_k=2", "confirm.seeds=2")


@pytest.fixture(scope="module")
def confirmed(tiny_data, tmp_path_factory) -> dict:
    from ray.tune import ExperimentAnalysis

    root = tmp_path_factory.mktemp("confirm")
    storage, holds = root / "runs", root / "hold"
    args = search_args(tiny_data, storage, *SETTINGS)
    proc = start_search(args, root / "first.log", **{hold.ENV: f"confirm_started:3:{holds}"})
    try:
        held = wait_held(proc, holds, root / "first.log", timeout=400)
        confirm_dir = Path(held["experiment_dir"])
        at_kill = {t.trial_id: t.status for t in ExperimentAnalysis(str(confirm_dir)).trials}
        # The rows each run had trained when the driver died (Tune may not have saved a finished run as such yet:
        # restored from its last checkpoint, it reports that epoch again, marked, and trains nothing).
        before = {trial_id: trained_rows(confirm_dir / f"trial_{trial_id}") for trial_id in at_kill}
    finally:
        kill_group(proc)
    experiment = confirm_dir.parent
    first = json.loads((experiment / "summary.json").read_text())  # the search's, the stage unfinished
    search_to_the_end(search_args(tiny_data, storage) + ["--resume", str(experiment)], root / "resume.log", timeout=480)
    assert last_line_path(root / "resume.log") == experiment / "summary.json"
    return {"experiment": experiment, "held": held, "at_kill": at_kill, "before": before, "first": first,
            "summary": json.loads((experiment / "summary.json").read_text()), "log": (root / "resume.log").read_text(),
            "tmp": root}


@pytest.mark.slow
def test_killed_during_confirmation_resumes_without_training_a_run_twice_or_losing_one(confirmed):
    experiment, summary = confirmed["experiment"], confirmed["summary"]
    assert confirmed["first"]["confirmation"]["status"] == "unfinished"  # what export and analyze saw at the kill
    finished = {i: rows for i, rows in confirmed["before"].items() if [r["epoch"] for r in rows] == [1, 2]}
    assert finished, confirmed["before"]  # a run had trained all its epochs before the kill: kept as it was
    c = summary["confirmation"]
    assert c["status"] == "finished" and c["seeds"] == [1, 2] and len(c["finalists"]) == 2
    runs = [run for f in c["finalists"] for run in f["runs"]]
    assert len(runs) == 4 and all(run["status"] == "TERMINATED" and run["epochs"] == 2 for run in runs), runs
    for trial_id, rows in finished.items():
        assert trained_rows(experiment / "confirm" / f"trial_{trial_id}") == rows
    for run in runs:
        assert epochs_of(experiment / run["path"]) == [1, 2]  # none trained twice, none skipped
        # The finalist's config with only the training seed changed: the validation split stays the search's.
        trained = json.loads((experiment / run["checkpoint"] / "trial_config.json").read_text())
        assert trained["seed"] == run["seed"] and trained["data"]["split_seed"] == 0
    assert {f["trial_id"] for f in c["finalists"]} <= {t["trial_id"] for t in summary["trials"]}
    assert summary["interrupted"] is False and summary["num_trials"] == 2


@pytest.mark.slow
def test_summary_holds_each_finalists_seed_statistics_and_the_verdict(confirmed):
    summary, c = confirmed["summary"], confirmed["summary"]["confirmation"]
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    for f in c["finalists"]:
        assert f["search_score"] == by_id[f["trial_id"]]["metrics"]["val_acc"]
        scores = [run["metrics"]["val_acc"] for run in f["runs"]]
        expected = spread(scores)
        assert f["val"]["scores"] == scores and f["val"]["mean"] == pytest.approx(expected.mean)
        assert (f["val"]["low"], f["val"]["high"]) == (pytest.approx(expected.low), pytest.approx(expected.high))
        assert f["optimism"] == pytest.approx(f["search_score"] - expected.mean)
        assert f["test"]["mean"] == pytest.approx(sum(run["test_acc"] for run in f["runs"]) / 2)  # a test split exists
    means = {f["trial_id"]: f["val"]["mean"] for f in c["finalists"]}
    assert c["winner"] == max(means, key=means.get) and c["ranking"][0] == c["winner"]
    said = "not distinguishable at 2 seeds" if not c["distinguishable"] else "distinguishable at 2 seeds"
    assert said in c["verdict"] and c["verdict"] in confirmed["log"]
    # The median seed ships (of two, the worse), and best_config.yaml re-trains exactly that run.
    winner = next(f for f in c["finalists"] if f["trial_id"] == c["winner"])
    worse = min(winner["runs"], key=lambda run: (run["metrics"]["val_acc"], run["seed"]))
    assert c["shipped"]["trial_id"] == worse["trial_id"]
    best_config = yaml.safe_load((confirmed["experiment"] / "best_config.yaml").read_text())
    assert best_config["seed"] == worse["seed"] and best_config["model"] == winner["config"]["model"]


@pytest.mark.slow
def test_optuna_has_the_runs_in_a_study_of_their_own_and_the_search_study_is_untouched(confirmed):
    experiment = confirmed["experiment"]
    storage = f"sqlite:///{experiment / 'study.db'}"
    search = optuna.load_study(study_name=experiment.name, storage=storage)
    confirm = optuna.load_study(study_name=f"{experiment.name}-confirm", storage=storage)
    assert len(search.trials) == 2
    runs = {run["trial_id"]: run for f in confirmed["summary"]["confirmation"]["finalists"] for run in f["runs"]}
    assert sorted(t.user_attrs["ray_trial_id"] for t in confirm.trials) == sorted(runs)  # each once, after a resume
    for t in confirm.trials:
        run_metrics = runs[t.user_attrs["ray_trial_id"]]["metrics"]
        assert t.user_attrs["stage"] == "confirm" and t.value == pytest.approx(run_metrics["val_acc"])


@pytest.mark.slow
def test_export_ships_the_confirmed_winners_median_seed_and_the_report_shows_the_finalists(confirmed, capsys):
    from results import analyze, export
    from results.exporter.source import locate

    experiment, c = confirmed["experiment"], confirmed["summary"]["confirmation"]
    out = confirmed["tmp"] / "model"
    done = run_main(export.main, [str(experiment), "--out", str(out), "--check-images", "4"], capsys)
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "model.json").read_text())
    assert meta["source"]["trial_id"] == c["shipped"]["trial_id"]
    assert meta["confirmation"]["seed"] == c["shipped"]["seed"]
    assert meta["confirmation"]["finalist"] == c["winner"] and "median seed" in meta["confirmation"]["shipped"]
    assert "## Confirmation over seeds" in (out / "MODEL_CARD.md").read_text()
    # --pick still chooses among the search's own trials.
    assert locate(experiment, confirmed_winner=False).trial["trial_id"] == confirmed["summary"]["best"]["trial_id"]
    done = run_main(analyze.main, [str(experiment), "--no-evaluate", "--no-wandb"], capsys)
    assert done.returncode == 0, done.stderr
    report = (experiment / "report" / "report.md").read_text()
    assert (experiment / "report" / "confirmation.png").is_file() and c["verdict"] in report
