"""results/analyze.py on a real tiny search (tests/results/searched.py): the report, its W&B run, bad input."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from results import analyze
from tests.conftest import REPO, free_port
from tests.helpers.searched import EPOCHS, tiny_search
from tests.helpers.wandb_records import read_offline_run

ANALYZE = REPO / "results" / "analyze.py"
PLOTS = ["learning_curves", "efficiency", "importance", "parallel", "params", "choices", "confusion"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_data) -> Path:
    return tiny_search(tmp_path_factory, tiny_data)


def _copy(experiment: Path, parent: Path) -> Path:
    """The experiment copied elsewhere under its own name, without what the tests of results/ add to it."""
    copy = parent / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("wandb", "report", "evaluation-*", "confusion-*"))
    return copy


def _relative(experiment: Path, recorded: str) -> str:
    """A summary path relative to the experiment (as summary.json records it, or absolute in older ones)."""
    return str(Path(recorded).relative_to(experiment)) if Path(recorded).is_absolute() else recorded


@pytest.mark.slow
def test_report_of_a_moved_experiment_read_through_a_uri(experiment, tmp_path):
    moved = _copy(experiment, tmp_path / "moved")
    summary = json.loads((moved / "summary.json").read_text())
    # Given as a URI, as for s3://: read and written through pyarrow; its W&B run (like a URI search's)
    # goes to ./runs/<experiment>/ of the working directory.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, str(ANALYZE), f"file://{moved}", "--baseline", str(experiment)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"file://{moved}/report/report.html"
    report = moved / "report"
    for name in PLOTS:
        assert (report / f"{name}.png").read_bytes()[:8] == PNG, name

    # report.html stands alone: every plot embedded (the very bytes of its PNG), nothing linked.
    page = (report / "report.html").read_text()
    images = r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-file="([^"]+)"'
    embedded = {file: data for data, file in re.findall(images, page)}
    assert sorted(embedded) == sorted(f"{name}.png" for name in PLOTS)
    for file, data in embedded.items():
        assert base64.b64decode(data) == (report / file).read_bytes(), file
    assert not re.search(r'(src|href)="(?!data:)', page)
    markdown = (report / "report.md").read_text()
    for name in PLOTS:
        assert f"]({name}.png)" in markdown

    # The leaderboard: every trial (4 < 10), best first, with its epochs, status and sampled parameters.
    expected = [t["trial_id"] for t in sorted(summary["trials"], key=lambda t: -t["metrics"]["val_acc"])]
    columns = ["rank", "trial", "val_acc", "epochs", "status"]
    header = next(i for i, line in enumerate(lines) if line.split()[:5] == columns)
    assert all(key in lines[header] for key in summary["trials"][0]["params"])
    rows = [line.split() for line in lines[header + 2:header + 2 + len(expected)]]
    assert [row[1] for row in rows] == expected
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    for row in rows:
        trial = by_id[row[1]]
        assert float(row[2]) == pytest.approx(trial["metrics"]["val_acc"], abs=5e-5)
        assert int(row[3]) == trial["epochs"]

    # The best trial was evaluated on the test split (it had no evaluation yet) beside its own checkpoint.
    best = moved / _relative(experiment, summary["best"]["checkpoint"])
    evaluation = json.loads((best / "evaluation-test.json").read_text())
    assert (best / "confusion-test.png").read_bytes()[:8] == PNG
    assert f"accuracy {evaluation['accuracy']:.4f} on {evaluation['images']} images" in markdown
    # Importance and parallel coordinates count ASHA-stopped trials, and say so.
    complete = sum(t["epochs"] == EPOCHS for t in summary["trials"])
    assert f"{complete} finished + {len(expected) - complete} ASHA-stopped trials" in markdown
    assert f"Compared with: {experiment.name} (tpe + ASHA, {len(expected)} trials)" in markdown

    # The same report in W&B: a run in the search's group, read back with W&B's own record classes.
    (run_dir,) = (tmp_path / "runs" / experiment.name / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert run.group == experiment.name and run.config["best_trial"] == summary["best"]["trial_id"]
    logged = run.history[0]
    for name in PLOTS:
        image = logged[f"plots/{name}"]
        assert image["_type"] == "image-file"
        assert (run_dir / "files" / image["path"]).read_bytes() == (report / f"{name}.png").read_bytes()
    table = json.loads((run_dir / "files" / logged["leaderboard"]["path"]).read_text())
    assert table["columns"][:5] == ["rank", "trial", "val_acc", "epochs", "status"]
    assert [row[1] for row in table["data"]] == expected
    confusion = json.loads((run_dir / "files" / logged["confusion_matrix_table"]["path"]).read_text())
    assert sum(row[-1] for row in confusion["data"]) == evaluation["images"]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_a_folder_that_is_not_an_experiment_is_one_line(tmp_path, capsys):
    assert analyze.main([str(tmp_path)]) == 2
    assert _one_error_line(capsys).startswith(
        f"error: {tmp_path}: not an experiment folder (no summary.json or search.yaml inside")
    assert analyze.main([str(tmp_path / "missing")]) == 2
    assert _one_error_line(capsys) == f"error: {tmp_path / 'missing'}: no such folder"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_unfinished_search_is_one_line(experiment, tmp_path, capsys):
    shutil.copy(experiment / "search.yaml", tmp_path / "search.yaml")
    assert analyze.main([str(tmp_path)]) == 2
    assert _one_error_line(capsys) == (
        f"error: {tmp_path}: no summary.json: the search never finished; continue it with python "
        f"tune/run_search.py --config {tmp_path / 'search.yaml'} --resume {tmp_path}")


@pytest.mark.slow
def test_an_experiment_with_no_finished_trial_is_one_line(experiment, tmp_path, capsys):
    failed = _copy(experiment, tmp_path)
    summary = json.loads((failed / "summary.json").read_text())
    for trial in summary["trials"]:
        trial.update(status="ERROR", error="ValueError: model.name: unknown model 'notamodel'", metrics={},
                     epochs=0, checkpoint=None)
    summary["best"] = None
    (failed / "summary.json").write_text(json.dumps(summary))
    for trial_dir in failed.glob("trial_*"):
        shutil.rmtree(trial_dir)
    assert analyze.main([str(failed), "--no-wandb"]) == 2
    assert _one_error_line(capsys) == (
        f"error: {failed}: no finished trial: none of its {len(summary['trials'])} trials reported val_acc; "
        "first error: ValueError: model.name: unknown model 'notamodel'")
    assert not (failed / "report").exists()


@pytest.mark.slow
def test_a_missing_best_checkpoint_is_one_line(experiment, tmp_path, capsys):
    moved = _copy(experiment, tmp_path)
    summary = json.loads((moved / "summary.json").read_text())
    relative = _relative(experiment, summary["best"]["checkpoint"])
    shutil.rmtree(moved / relative)
    summary["best"]["checkpoint"] = relative  # as summary.json records it: the original is not consulted
    for trial in summary["trials"]:
        trial["checkpoint"] = trial["checkpoint"] and _relative(experiment, trial["checkpoint"])
        trial["path"] = _relative(experiment, trial["path"])
    (moved / "summary.json").write_text(json.dumps(summary))
    assert analyze.main([str(moved), "--no-wandb"]) == 2
    assert _one_error_line(capsys) == (
        f"error: {moved}: the best trial's checkpoint {moved / relative} is missing (no state.pt); "
        "--no-evaluate reports without the test split")
    assert not (moved / "report").exists()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_study_db_is_the_search_in_optuna_and_optuna_dashboard(experiment, tmp_path):
    summary = json.loads((experiment / "summary.json").read_text())
    # A copy: optuna-dashboard may add its own tables; the experiment stays as the search left it.
    database = tmp_path / "study.db"
    shutil.copy(experiment / "study.db", database)
    study = optuna.load_study(study_name=experiment.name, storage=f"sqlite:///{database}")
    by_trial = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert sorted(by_trial) == sorted(t["trial_id"] for t in summary["trials"])
    for trial in summary["trials"]:
        frozen = by_trial[trial["trial_id"]]
        assert frozen.state.name == ("COMPLETE" if trial["epochs"] == EPOCHS else "PRUNED")
        assert sorted(frozen.intermediate_values) == list(range(1, trial["epochs"] + 1))
        assert frozen.intermediate_values[trial["epochs"]] == pytest.approx(trial["metrics"]["val_acc"])
        assert frozen.params == pytest.approx(trial["params"])

    port = free_port()
    log = tmp_path / "dashboard.log"
    dashboard = subprocess.Popen([str(Path(sys.executable).with_name("optuna-dashboard")), f"sqlite:///{database}",
                                  "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline and dashboard.poll() is None:
            try:  # the server is up once it answers; until then the connection is refused
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.2)
        assert studies is not None, log.read_text()[-3000:]
        assert [s["study_name"] for s in studies] == [experiment.name]
        assert studies[0]["directions"] == ["maximize"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
        served = {next(a["value"] for a in t["user_attrs"] if a["key"] == "ray_trial_id"): t for t in detail["trials"]}
        for trial in summary["trials"]:
            assert served[trial["trial_id"]]["state"] == by_trial[trial["trial_id"]].state.name.capitalize()
            assert len(served[trial["trial_id"]]["intermediate_values"]) == trial["epochs"]
    finally:
        dashboard.terminate()  # by its own pid
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
            dashboard.wait(timeout=10)


def test_a_multi_objective_study_counts_its_stopped_trials(tmp_path):
    """The searcher keeps no intermediate values in a multi-objective study (a stopped trial is PRUNED without
    values): the report's copy takes a stopped trial's last metric from the results, and counts it."""
    from results.report.study import with_pruned_as_complete
    from tune.engines.study import StudySearcher
    from tune.experiment.layout import study_url
    from tune.space import SearchFile

    search = SearchFile(experiment="mo", space={"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
                        objectives=[{"metric": "val_acc", "mode": "max"}, {"metric": "latency_ms", "mode": "min"}],
                        searcher={"startup_trials": 2})
    searcher = StudySearcher(search.space, search.searcher, metric=search.metric, mode=search.mode, epochs=3,
                             storage_url=study_url(tmp_path), study_name="mo", objectives=search.objectives)
    results = {"a": (0.9, 2.0, 3), "b": (0.8, 1.0, 3), "c": (0.6, 3.0, 1), "d": (0.5, 0.5, 1), "e": (0.7, 1.5, 2)}
    for trial_id, (acc, latency, epoch) in results.items():
        searcher.suggest(trial_id)
        row = {"val_acc": acc, "latency_ms": latency, "epoch": epoch}
        searcher.on_trial_result(trial_id, row)
        searcher.on_trial_complete(trial_id, row)
    study = optuna.load_study(study_name="mo", storage=study_url(tmp_path))
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 2 + ["PRUNED"] * 3
    last = {trial_id: acc for trial_id, (acc, _, _) in results.items()}  # what summary.json's trials give
    view = with_pruned_as_complete(study, "val_acc", last)
    assert (view.complete, view.pruned) == (2, 3)
    assert sorted(t.value for t in view.study.trials) == sorted(last.values())
    assert with_pruned_as_complete(study, "val_acc").pruned == 0  # without the results: nothing to count them by
