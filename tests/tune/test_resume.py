"""Faults during a search, injected at hold points (infra/hold.py), never by racing the search: a trial
process killed mid-run is retried from its last checkpoint; a search whose driver is killed
continues with --resume, keeping finished trials and continuing unfinished ones from their
checkpoints. Each test asserts the exact epoch training continues from."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import optuna
import pytest

from infra import hold
from tests.helpers import kill_group, last_line_path, stop_when_held, wait_held
from tests.helpers.cli import run_main
from tests.helpers.search import SMOKE, epochs_of, search_args, search_to_the_end, start_search


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_trial_is_retried_from_its_last_checkpoint(tiny_data, tmp_path):
    """SIGKILL the trial's process while it is held after epoch 2's checkpoint: Tune retries the
    trial, which goes on at epoch 3."""
    storage, log, holds = tmp_path / "runs", tmp_path / "search.log", tmp_path / "hold"
    args = search_args(tiny_data, storage, "budget.num_samples=1", "trial.epochs=4",
                       "budget.early_stopping=false", "failure.max_failures=1")
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:2:{holds}"})
    try:
        held = wait_held(proc, holds, log)
        os.kill(held["pid"], signal.SIGKILL)  # the trial's own process (a Tune function actor)
        hold.release(holds)
        assert proc.wait(timeout=300) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    summary = json.loads(last_line_path(log).read_text())
    assert summary["num_trials"] == 1 and summary["num_errors"] == 0, summary
    trial = summary["trials"][0]
    assert trial["trial_id"] == held["trial_id"] and trial["status"] == "TERMINATED"
    # Paths relative to the experiment folder (summary.json contract), so a moved experiment still reads.
    assert trial["path"] == f"trial_{held['trial_id']}"
    assert trial["checkpoint"].startswith(f"{trial['path']}/checkpoint_")
    # Epochs 1-2 before the kill, 3-4 after it: none trained twice, none skipped.
    assert epochs_of(Path(summary["experiment_dir"]) / trial["path"]) == [1, 2, 3, 4]
    assert "ActorDiedError" in log.read_text() or "RayActorError" in log.read_text(), "Tune saw no failure"
    # The failure's whole text is kept in the experiment (not only under Ray's temp folder); the trial
    # recovered, so summary.json names no error.
    kept = (Path(summary["experiment_dir"]) / trial["path"] / "error.txt").read_text()
    assert kept.startswith("Failure # 1 (occurred at ") and "The actor died unexpectedly" in kept, kept[:500]
    assert trial["error"] is None and trial["error_file"] is None


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("held_epoch", [1, 3], ids=["mid-trial", "last-epoch"])
def test_an_interrupted_search_resumes_without_rerunning_finished_trials(tiny_data, tmp_path, held_epoch):
    """Kill the driver (and its Ray) while the 2nd of 3 trials is held after its epoch-K checkpoint;
    --resume keeps the finished trial, continues the held one at epoch K+1 (K=3, its last epoch: it
    finished right before the kill, and is in the summary without training again) and runs the third."""
    from ray.tune import ExperimentAnalysis

    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    # Storage as a URI, as for s3://: Tune, Train and the summary all go through pyarrow filesystems.
    # One trial at a time, so the first has finished and the third not started when the second is held.
    args = search_args(tiny_data, f"file://{storage}", "budget.num_samples=3", "trial.epochs=3",
                       "budget.early_stopping=false", "max_concurrent_trials=1")
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:{held_epoch}:{holds}:2"})
    try:
        held = wait_held(proc, holds, log)
        # What Tune's saved state, the one --resume reads, says at the moment of the kill.
        at_kill = {t.trial_id: t.status for t in ExperimentAnalysis(held["experiment_dir"]).trials}
    finally:
        kill_group(proc)  # the driver and its Ray die mid-search, as with a lost laptop session
    experiment = Path(held["experiment_dir"])
    # Tune saves a running trial as PENDING (to be started again on restore): unfinished either way.
    assert at_kill[held["trial_id"]] in ("PENDING", "RUNNING") and len(at_kill) == 2, at_kill
    finished = [trial_id for trial_id, status in at_kill.items() if status == "TERMINATED"]
    assert len(finished) == 1, at_kill
    before = (experiment / f"trial_{finished[0]}" / "result.json").read_text()
    assert [json.loads(line)["epoch"] for line in before.splitlines()] == [1, 2, 3]

    resume_log = tmp_path / "resume.log"
    search_to_the_end(search_args(tiny_data, f"file://{storage}") + ["--resume"], resume_log, timeout=480)
    assert resume_log.read_text().strip().splitlines()[-1] == f"file://{experiment}/summary.json"
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["num_trials"] == 3 and summary["num_errors"] == 0, summary
    assert all(t["status"] == "TERMINATED" and t["epochs"] == 3 for t in summary["trials"]), summary["trials"]
    assert set(at_kill) < {t["trial_id"] for t in summary["trials"]}
    # The finished trial was kept, not trained again; the held one went on at epoch K+1, none twice.
    assert (experiment / f"trial_{finished[0]}" / "result.json").read_text() == before
    assert epochs_of(experiment / f"trial_{held['trial_id']}") == [1, 2, 3]
    if held_epoch == 1:
        # --resume of the finished search has nothing to run: wall_s, the trials' time (Tune's fit() of every
        # session), grows by the few seconds fit() takes to see that, not by Ray's start (~20 s here).
        search_to_the_end(search_args(tiny_data, f"file://{storage}") + ["--resume"], tmp_path / "noop.log",
                          timeout=300)
        again = json.loads((experiment / "summary.json").read_text())
        assert again["num_trials"] == 3 and 0 <= again["wall_s"] - summary["wall_s"] < 8, \
            (again["wall_s"], summary["wall_s"])

    # The Optuna study came back whole: the resumed search reattached to study.db (for this file://
    # storage it lives in ./runs/<experiment>/ of the directory the search ran in, the repository), so
    # every Tune trial is one Optuna trial holding its per-epoch values, before and after the resume.
    command = next(line for line in resume_log.read_text().splitlines() if line.startswith("Optuna study: "))
    storage_url = command.split("optuna-dashboard ", 1)[1]
    try:
        study = optuna.load_study(study_name=experiment.name, storage=storage_url)
    finally:
        shutil.rmtree(Path(storage_url.removeprefix("sqlite:///")).parent, ignore_errors=True)
    done = {t.user_attrs["ray_trial_id"]: t for t in study.trials if t.state.name == "COMPLETE"}
    assert sorted(done) == sorted(t["trial_id"] for t in summary["trials"])
    for trial in summary["trials"]:
        assert done[trial["trial_id"]].value == pytest.approx(trial["metrics"]["val_acc"])
        assert sorted(done[trial["trial_id"]].intermediate_values) == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_stops_honestly_and_resume_extends_the_search(tiny_data, tmp_path, capsys):
    """Ctrl-C while the 2nd of 2 trials is held after epoch 1: exit 130, summary "interrupted" with the
    held trial UNFINISHED (not finished), the last lines say how to continue. --resume refuses a
    changed setting, then continues with a raised budget.num_samples: 3 trials; wall_s adds up.
    (No early stopping: ASHA could stop the 2nd trial at epoch 1, before the hold.)"""
    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    args = search_args(tiny_data, storage, "budget.num_samples=2", "trial.epochs=3",
                       "budget.early_stopping=false", "max_concurrent_trials=1")
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:1:{holds}:2"})
    # What a terminal sends on Ctrl-C: SIGINT to the whole foreground group. The held trial is not
    # released: Tune's graceful stop ends it where it is (after epoch 1), whatever the timing.
    held = stop_when_held(proc, holds, log, lambda pid: os.killpg(pid, signal.SIGINT), 130)
    out = log.read_text().strip().splitlines()
    experiment = Path(held["experiment_dir"])
    assert out[-2:] == ["interrupted; finished trials are kept, unfinished ones continue from their checkpoints. "
                        "Continue with:",
                        f"  python tune/run_search.py --config {experiment}/search.yaml --resume {experiment}"]
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["num_errors"] == 0
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    assert by_id[held["trial_id"]]["status"] == "UNFINISHED" and by_id[held["trial_id"]]["epochs"] == 1
    finished = [t for t in summary["trials"] if t["trial_id"] != held["trial_id"]]
    assert [(t["status"], t["epochs"]) for t in finished] == [("TERMINATED", 3)]

    # A changed setting is refused before anything starts; the folder is untouched.
    from tune.run_search import main as run_search

    changed = run_main(run_search, ["--config", str(experiment / "search.yaml"), "--resume", str(experiment),
                                    "--set", "trial.epochs=5"], capsys)
    assert changed.returncode == 2 and changed.stderr.strip() == (
        "error: --resume: trial.epochs would change the search being continued; only budget.num_samples "
        "can be raised (start a new search to change anything else)")

    resume_log = tmp_path / "resume.log"
    command = out[-1].split()[2:]  # exactly what the search said, plus a larger budget
    proc = start_search([*command, "--num-samples", "3", "--address", "local", "--num-cpus", "2"], resume_log)
    try:
        assert proc.wait(timeout=480) == 0, resume_log.read_text()[-5000:]
    finally:
        kill_group(proc)
    resumed = json.loads((experiment / "summary.json").read_text())
    assert resumed["interrupted"] is False and resumed["num_trials"] == 3 and resumed["num_errors"] == 0
    assert all(t["status"] == "TERMINATED" for t in resumed["trials"]), resumed["trials"]
    assert resumed["wall_s"] > summary["wall_s"]
    epochs = epochs_of(experiment / f"trial_{held['trial_id']}")
    assert epochs == [1, 2, 3], epochs  # went on after epoch 1, none twice


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_second_ctrl_c_stops_at_once(tiny_data, tmp_path):
    """The trial is held after epoch 1 (the search cannot end by itself) and the driver is held right
    after handling the first Ctrl-C; the second Ctrl-C stops it there: exit 130, no summary written,
    no temp file left, and the last lines still say how to continue."""
    storage, log = tmp_path / "runs", tmp_path / "search.log"
    trial_holds, driver_holds = tmp_path / "trial-hold", tmp_path / "driver-hold"
    args = search_args(tiny_data, storage, "budget.num_samples=1", "trial.epochs=3")
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:1:{trial_holds},interrupt:1:{driver_holds}"})
    try:
        held = wait_held(proc, trial_holds, log)
        os.kill(proc.pid, signal.SIGINT)
        assert wait_held(proc, driver_holds, log)["pid"] == proc.pid
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    experiment = Path(held["experiment_dir"])
    out = log.read_text().strip().splitlines()
    assert out[-2] == "stopped at once; the search state saved last is kept. Continue with:", out[-5:]
    assert out[-1] == f"  python tune/run_search.py --config {experiment}/search.yaml --resume {experiment}"
    assert not (experiment / "summary.json").exists()
    # The search's own files are written by rename (temp names: .<name>.<random>).
    assert not list(experiment.glob(".*.json.*")) + list(experiment.glob(".*.yaml.*")), "a temp file was left"


def test_resume_refuses_a_folder_whose_search_state_was_never_saved(tmp_path, capsys):
    """What a driver killed within seconds of its start leaves: search.yaml, no Tune state. One line that
    says how to start afresh, before Ray starts."""
    import ray

    from tune.run_search import main as run_search

    experiment = tmp_path / "runs" / "smoke-20260101-000000"
    experiment.mkdir(parents=True)
    (experiment / "search.yaml").write_text(SMOKE.read_text())
    result = run_main(run_search, ["--config", str(SMOKE), "--resume", str(experiment)], capsys)
    assert not ray.is_initialized()
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (
        f"error: --resume {experiment}: no search state was saved there (the search stopped within seconds of its "
        f"start), so there is nothing to continue; start it afresh: python tune/run_search.py --config "
        f"{experiment}/search.yaml")


def test_resume_refuses_changed_data(tmp_path):
    from train.data import DataError
    from tune.experiment.records import RunRecord
    from tune.experiment.storage import Experiment
    from tune.resume import check_same_data

    experiment = Experiment.create(str(tmp_path), "smoke-1")
    RunRecord(data_fingerprint="a" * 64, wall_s=12.5, sessions=1).write(experiment)
    record = RunRecord.read(experiment)
    assert record == RunRecord(data_fingerprint="a" * 64, wall_s=12.5, sessions=1)
    check_same_data(record, "a" * 64, experiment)
    with pytest.raises(DataError, match=r"the training data changed since the search started \(fingerprint "
                                         r"aaaaaaaaaaaa then, bbbbbbbbbbbb now\)"):
        check_same_data(record, "b" * 64, experiment)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_stops_like_ctrl_c(tiny_data, tmp_path):
    """SIGTERM (what timeout, systemd, Kubernetes and Slurm send) to the driver alone while its trial is held
    after epoch 1: not Ray's crash dump (exit 134) but the Ctrl-C stop: exit 143, summary "interrupted" with
    the trial UNFINISHED at epoch 1, the resume command last. (What --resume then does is the Ctrl-C test's:
    both signals leave the same state behind.)"""
    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    args = search_args(tiny_data, storage, "budget.num_samples=1", "trial.epochs=2", "budget.early_stopping=false")
    proc = start_search(args, log, **{hold.ENV: f"checkpoint:1:{holds}"})
    held = stop_when_held(proc, holds, log, lambda pid: os.kill(pid, signal.SIGTERM), 143)
    text = log.read_text()
    out = text.strip().splitlines()
    experiment = Path(held["experiment_dir"])
    assert "SIGTERM: stopping the search" in text and "crash" not in text.lower(), text[-3000:]
    assert out[-1] == f"  python tune/run_search.py --config {experiment}/search.yaml --resume {experiment}"
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert [(t["status"], t["epochs"]) for t in summary["trials"]] == [("UNFINISHED", 1)]


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_a_stop_while_a_trial_is_pending_lists_it_as_not_started_and_a_too_small_ray_cannot_resume_it(tiny_data,
                                                                                                     tmp_path):
    """Between data-parallel trials (one slot: the 2nd trial is sampled and waits for a process of its own, nothing
    runs): Ctrl-C exits 130 with summary.json marked interrupted, the first trial TERMINATED and the pending
    one NOT_STARTED with the config it was sampled with, and the resume command last. (A 1-worker trial takes over
    the finished trial's process at once, so it is never seen pending there. SIGTERM takes the same path with exit
    143: tests/tune/test_interrupt.py.)

    That 2-worker search (2 x 0.5 CPU + the trial's driver: one trial at a time on 2 CPUs) continued on a 1-CPU Ray:
    refused with the capacity line, exit 2, as a new search of that shape is, instead of a trial waiting for
    resources forever."""
    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    args = search_args(tiny_data, storage, "budget.num_samples=2", "trial.epochs=1",
                       "trial.workers.num_workers=2", "trial.workers.cpus_per_worker=0.5")
    proc = start_search(args, log, **{hold.ENV: f"pending:2:{holds}"})
    try:
        held = wait_held(proc, holds, log)
        os.kill(proc.pid, signal.SIGINT)
        hold.release(holds)
        assert proc.wait(timeout=240) == 130, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    experiment = next(storage.iterdir())
    out = log.read_text().strip().splitlines()
    assert "max concurrent trials: 1 (auto; " in log.read_text()  # one slot, as the docstring says
    assert out[-1] == f"  python tune/run_search.py --config {experiment}/search.yaml --resume {experiment}", out[-5:]
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["num_trials"] == 2, summary
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    pending = by_id[held["trial_id"]]
    assert (pending["status"], pending["epochs"], pending["metrics"]) == ("NOT_STARTED", 0, {})
    assert pending["params"] and pending["config"]["epochs"] == 1  # what it was sampled with
    assert [t["status"] for t in summary["trials"] if t is not pending] == ["TERMINATED"]

    resume_log = tmp_path / "resume.log"
    smaller = list(args)
    smaller[smaller.index("--num-cpus") + 1] = "1"
    proc = start_search(smaller + ["--resume"], resume_log)
    try:
        assert proc.wait(timeout=240) == 2, resume_log.read_text()[-5000:]
    finally:
        kill_group(proc)
    assert resume_log.read_text().strip().splitlines()[-1].startswith(
        "error: resources: no node of this cluster, now or after autoscaling, fits a trial (2 worker(s) of 0.5 CPU")
