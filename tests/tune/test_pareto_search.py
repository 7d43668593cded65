"""One real accuracy/latency search (a tiny smoke_pareto: small_cnn at 2 widths x 2 input sizes on the tiny
synthetic set), killed at a hold point and resumed, then reported on and exported with --pick.

Why one test for all of it: a multi-objective search on 2 cores costs ~half a minute of Ray and training, and
every part (front in summary.json, report, export, resume) reads the same experiment.

"Same front as an uninterrupted run" is checked without running the twin (which would double the cost): one
trial at a time, a multi-objective searcher seeds each proposal with seed + trials asked before it
(tune/engines/study.py), so the uninterrupted search is replayed in process from the study: a fresh study with the
same sampler, told the same results, must propose every trial's parameters exactly, and its Pareto front must be
summary.json's. Together with training that continues from its checkpoint (tests/tune/test_resume.py) and
latencies read back from latency.json, that is the uninterrupted run's front.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import yaml

from infra import hold
from tests.conftest import REPO
from tests.helpers import dotted, kill_group, wait_held
from tests.helpers.search import search_to_the_end, start_search
from tune.engines.study import StudySearcher
from tune.experiment.layout import study_url
from tune.space import load_search_file

pytestmark = pytest.mark.slow  # a search and its --resume, each on a Ray of its own

PARETO = REPO / "search_spaces" / "smoke_pareto.yaml"


def _tiny_pareto(tmp_path: Path, tiny_data: dict) -> Path:
    raw = yaml.safe_load(PARETO.read_text())
    raw["trial"]["data"] = {k: v for k, v in tiny_data.items() if k != "image_size"}
    raw["trial"]["epochs"] = 2
    raw["space"] = {"model.name": {"type": "choice", "values": ["small_cnn"]},
                    "model.cnn.width": {"type": "choice", "values": [4, 16]},
                    "model.cnn.blocks": {"type": "choice", "values": [2]},
                    "data.image_size": {"type": "choice", "values": [16, 24]},
                    "optim.lr": {"type": "loguniform", "low": 3e-3, "high": 3e-2}}
    raw["searcher"] = {"algorithm": "tpe", "seed": 0, "startup_trials": 2,
                       "warm_start": [{"model.cnn.width": 4, "data.image_size": 16}]}
    # No early stopping: ASHA could stop the held trial at epoch 1, before its hold (as in test_resume.py); the
    # PRUNED path is tests/tune/test_objectives.py's.
    raw["budget"] = {"num_samples": 4, "early_stopping": False}
    raw["max_concurrent_trials"] = 1  # one at a time: the replay below sees what the search saw
    raw["latency"] = {"warmup": 5, "repeats": 30}
    raw["wandb"] = {"enabled": False}
    path = tmp_path / "tiny_pareto.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _replayed_front(experiment: Path, config: Path) -> list[str]:
    """Replay the search's proposals on a fresh in-memory study; return the replayed Pareto front's trial ids."""
    search = load_search_file(config)
    done = optuna.load_study(study_name=experiment.name, storage=study_url(experiment))
    replay = StudySearcher(search.space, search.searcher, metric=search.metric, mode=search.mode,
                           epochs=search.trial.epochs, storage_url=f"sqlite:///{experiment.parent / 'replay.db'}",
                           study_name="replay", objectives=search.objectives)
    for trial in done.trials:
        tune_id = trial.user_attrs["ray_trial_id"]
        proposed = dict(dotted(replay.suggest(tune_id)))
        assert proposed == trial.params, (trial.number, proposed, trial.params)
        row = {"epoch": search.trial.epochs if trial.state.name == "COMPLETE" else 1}
        if trial.values:
            row.update(zip(done.metric_names, trial.values))
        else:  # ASHA stopped it: PRUNED without values; any finite numbers make the replay tell PRUNED too
            row.update({name: 0.0 for name in done.metric_names})
        replay.on_trial_complete(tune_id, row)
    assert [t.state for t in replay.study.trials] == [t.state for t in done.trials]
    return [t.user_attrs["ray_trial_id"] for t in replay.study.best_trials]


@pytest.mark.timeout(600)
def test_a_pareto_search_resumes_exactly_reports_its_front_and_ships_a_picked_point(tiny_data, tmp_path, capsys):
    from results.analyze import main as analyze
    from results.export import main as export
    from results.predict import main as predict

    config, storage = _tiny_pareto(tmp_path, tiny_data), tmp_path / "runs"
    args = ["--config", str(config), "--storage", str(storage), "--address", "local", "--num-cpus", "2"]
    log, holds = tmp_path / "first.log", tmp_path / "hold"
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:1:{holds}:3"})
    try:
        held = wait_held(proc, holds, log)
    finally:
        kill_group(proc)  # the driver and its Ray die while the 3rd trial is held after epoch 1
    experiment = Path(held["experiment_dir"])
    latency_file = (experiment / "latency.json").read_text()
    table = json.loads(latency_file)
    assert len(table) == 4 and all(entry["latency_ms"] > 0 for entry in table.values())

    resume_log = tmp_path / "resume.log"
    search_to_the_end(args + ["--resume", str(experiment)], resume_log, timeout=400)
    assert "latency: " not in resume_log.read_text()  # every architecture read back, none measured again
    assert (experiment / "latency.json").read_text() == latency_file
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["num_trials"] == 4 and summary["num_errors"] == 0
    assert summary["objectives"] == [{"metric": "val_acc", "mode": "max"}, {"metric": "latency_ms", "mode": "min"}]
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    for trial in summary["trials"]:  # each trial's latency is its architecture's, in every result row
        key = {"model": "small_cnn", "image_size": trial["config"]["data"]["image_size"], "classes": 6}
        entry = next(e for e in table.values() if all(e[k] == v for k, v in key.items())
                     and e["cnn"]["width"] == trial["config"]["model"]["cnn"]["width"])
        rows = [json.loads(line) for line in (experiment / trial["path"] / "result.json").read_text().splitlines()]
        assert {row["latency_ms"] for row in rows} == {trial["metrics"]["latency_ms"]} == {entry["latency_ms"]}
    front = summary["front"]
    assert front and all(by_id[i]["epochs"] == 2 and by_id[i]["metrics"]["latency_ms"] for i in front)
    assert held["trial_id"] in by_id and by_id[held["trial_id"]]["status"] == "TERMINATED"
    assert sorted(_replayed_front(experiment, config)) == sorted(front)

    assert analyze([str(experiment), "--no-evaluate", "--no-wandb"]) == 0
    report = (experiment / "report" / "report.md").read_text()
    assert (experiment / "report" / "pareto.png").is_file()
    assert f"## Pareto front ({len(front)} trials)" in report and "## Accuracy against latency" in report

    out = tmp_path / "model"
    assert export([str(experiment), "--out", str(out), "--pick", "fastest", "--min-val-acc", "0"]) == 0
    fastest = min(front, key=lambda i: by_id[i]["metrics"]["latency_ms"])
    meta = json.loads((out / "model.json").read_text())
    assert meta["source"]["trial_id"] == fastest
    assert meta["latency"]["latency_ms"] == by_id[fastest]["metrics"]["latency_ms"]
    assert meta["latency"]["settings"]["repeats"] == 30 and meta["latency"]["settings"]["threads"] == 1
    capsys.readouterr()
    assert predict([str(out), "--benchmark", "--json"]) == 0  # re-measured with model.json's settings
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["settings"]["repeats"] == 30 and again["recorded_latency_ms"] == meta["latency"]["latency_ms"]
    again = again["latency_ms"]
    # Loose on purpose: these models take ~0.03 ms, where another process on the 2 shared CI cores moves a
    # median by several times; the bench (bench/pareto.py) holds the 15 % target on an idle machine.
    assert math.isfinite(again) and again < 10 * meta["latency"]["latency_ms"] + 0.5
