"""The confirmation stage: after the search, its finalists (finalists.py) trained again from scratch for the full
trial.epochs, once per seed, without early stopping, as Ray Tune trials on the same Ray with the search's per-trial
resources and concurrency. The stage is a Tune run of its own in ``<experiment>/confirm/`` (its own experiment state),
so ``--resume`` continues it with ``Tuner.restore`` as it does the search: finished runs are kept, unfinished ones go on
from their last checkpoint. Each run is the finalist's config with ``seed`` replaced; ``data.split_seed`` and the data
stay, so every run is scored on the search's validation images."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any, Optional

from ray import tune
from ray.tune.stopper import CombinedStopper

from infra.atomic_fs import ray_storage
from tune import moved
from tune.cluster import cluster_capacity
from tune.confirmation.finalists import pick_finalists
from tune.confirmation.outcome import decide, plus_minus
from tune.confirmation.runs import with_runs
from tune.confirmation.study import record_runs, study_name
from tune.engine_label import engine_name
from tune.experiment.confirmation import Confirmation, Finalist
from tune.experiment.layout import CONFIRM_DIR, TRAIN_RUNS, trial_dirname
from tune.experiment.records import ERROR, TERMINATED, RunRecord, Summary
from tune.experiment.storage import Experiment
from tune.hold_points import ConfirmHolds
from tune.progress import CompactReporter, use_compact_engine
from tune.resume import has_saved_state
from tune.space import SearchFile
from tune.summary import saved_trials
from tune.trial import describe_workers, max_concurrent_trials, reuse_trial_processes, run_trial, trial_resources
from tune.trial_checkpoints import align_for_resume
from tune.watch import ErrorFiles, ReleaseTrainResources, StallGuard, stall_reason

FINALISTS_FILE = "finalists.json"
"""In confirm/: the finalists the stage started with, so a resumed stage trains the same ones."""


def confirm_trial(config: dict[str, Any], *, finalists: dict[str, dict[str, Any]], **kwargs: Any) -> None:
    """One confirmation run: the finalist's trial config with the run's training seed (tune/trial.py run_trial)."""
    trial = json.loads(json.dumps(finalists[config["finalist"]]))
    trial["seed"] = int(config["seed"])
    run_trial(trial, **kwargs)


def _finalists(search: SearchFile, confirm: Experiment, summary: Summary) -> list[Finalist]:
    """The finalists: the ones a started stage recorded, else picked now (and recorded)."""
    picked = pick_finalists(summary, search.confirm.top_k)
    if confirm.has(FINALISTS_FILE):
        started = [Finalist.model_validate(f) for f in json.loads(confirm.read_text(FINALISTS_FILE))]
        if [f.trial_id for f in started] != [f.trial_id for f in picked]:
            kept = ", ".join(f.trial_id for f in started)
            print(f"resume: the confirmation keeps the finalists it started with ({kept})"
                  "; trials the search added since are not confirmed", flush=True)
        return started
    if picked:
        confirm.write_text(FINALISTS_FILE, json.dumps([f.model_dump(mode="json") for f in picked], indent=1))
    return picked


def _tuner(search: SearchFile, experiment: Experiment, confirm: Experiment, finalists: list[Finalist], seeds: list[int],
           concurrency: int, *, verbose: bool, links: list[str], trial_kwargs: dict[str, Any]) -> tune.Tuner:
    workers = search.trial_config({}).workers
    configs = {f.trial_id: f.config.to_dict() for f in finalists}
    trainable = tune.with_resources(
        partial(confirm_trial, finalists=configs, storage_path=confirm.child(TRAIN_RUNS), metric=search.metric,
                **trial_kwargs), trial_resources(workers))
    if has_saved_state(confirm):
        for line in align_for_resume(confirm.uri):
            print(f"resume: confirmation: {line}", flush=True)
        path, filesystem = ray_storage(confirm.uri)
        moved.install()
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=filesystem)
    reporter = None
    if not verbose:
        use_compact_engine()
        reporter = CompactReporter(["finalist", "seed"], metric=search.metric, mode=search.mode,
                                   epochs=search.trial.epochs, links=links, experiment_uri=confirm.uri,
                                   stopper="no early stopping")
    guard = StallGuard(confirm.uri, search.failure.stall_timeout_s, describe_workers(workers))
    holds = ConfirmHolds()
    callbacks = [ErrorFiles(confirm.uri), ReleaseTrainResources(), guard, holds]
    if search.wandb.enabled:
        from tune.wandb_logging import WandbTrialLogger

        callbacks.append(WandbTrialLogger(project=search.wandb.project, entity=search.wandb.entity,
                                          group=experiment.name, directory=experiment.local_dir(),
                                          engine=engine_name(search), job_type="confirm"))
    storage_path, filesystem = ray_storage(experiment.uri)
    return tune.Tuner(
        trainable,
        # Every finalist x every seed (Tune's grid: one trial each), no searcher and no scheduler: nothing stops early.
        param_space={"finalist": tune.grid_search([f.trial_id for f in finalists]), "seed": tune.grid_search(seeds)},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=reuse_trial_processes(workers),
                                    trial_dirname_creator=lambda trial: trial_dirname(trial.trial_id)),
        run_config=tune.RunConfig(
            name=CONFIRM_DIR, storage_path=storage_path, storage_filesystem=filesystem, callbacks=callbacks,
            stop=CombinedStopper(guard), failure_config=tune.FailureConfig(max_failures=search.failure.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # as the search's: state saved per checkpoint
            progress_reporter=reporter, verbose=1 if reporter else None))


def run_stage(search: SearchFile, experiment: Experiment, summary: Summary, record: RunRecord, concurrency: int, *,
              verbose: bool = False, links: list[str] = (), interrupted=lambda: False,
              **trial_kwargs: Any) -> tuple[Optional[Confirmation], Optional[str]]:
    """Run (or continue) the stage; (the confirmation, the stall guard's line or None). None when there is nothing
    to confirm. ``interrupted()``: whether a stop was asked for during the stage's ``fit()``."""
    confirm = Experiment.at(experiment.child(CONFIRM_DIR))
    finalists = _finalists(search, confirm, summary)
    if not finalists:
        return None, None
    seeds = search.confirm.seed_list(search.trial.seed)
    # Until every run has finished, summary.json says the confirmation is unfinished (export waits for it).
    summary.confirmation = Confirmation(metric=search.metric, mode=search.mode, top_k=search.confirm.top_k,
                                        seeds=seeds, status="unfinished", finalists=finalists)
    summary.write(experiment)
    print(f"confirmation: {len(finalists)} finalist(s) x {len(seeds)} seeds {seeds}, {search.trial.epochs} epochs "
          f"each, no early stopping; optuna-dashboard study {study_name(experiment)}", flush=True)
    tuner = _tuner(search, experiment, confirm, finalists, seeds, concurrency, verbose=verbose, links=list(links),
                   trial_kwargs=trial_kwargs)
    started = time.monotonic()
    results = tuner.fit()
    record.confirm_wall_s += time.monotonic() - started
    record.write(experiment)
    confirmation = summary.confirmation.model_copy(update={"status": "finished",
                                                           "wall_s": round(record.confirm_wall_s, 2)})
    confirmation = with_runs(confirmation, results, experiment, confirm, saved_trials(confirm), evaluate=True)
    runs = [run for f in confirmation.finalists for run in f.runs]
    complete = (len(runs) == len(finalists) * len(seeds) and all(r.status in (TERMINATED, ERROR) for r in runs)
                and not interrupted())
    confirmation = decide(confirmation, summary.best.trial_id if summary.best else None, complete)
    if not complete:
        confirmation.status = "unfinished"
    record_runs(experiment, confirmation, search.objective_list)
    for line in console_lines(confirmation):
        print(line, flush=True)
    return confirmation, stall_reason(confirm)


def console_lines(confirmation: Confirmation) -> list[str]:
    """The finalists' table and the verdict, for the console."""
    lines = [f"confirmation ({confirmation.status}): search score vs {confirmation.metric} over the seeds "
             "(mean ± 95 % interval), test accuracy, optimism"]
    for f in confirmation.finalists:
        optimism = f"{f.optimism:+.4f}" if f.optimism is not None else "-"
        lines.append(f"  trial {f.trial_id}: search {f.search_score:.4f}  confirmed {plus_minus(f.val)}  "
                     f"test {plus_minus(f.test)}  optimism {optimism}  ({len(f.val.scores) if f.val else 0} runs)")
    if confirmation.verdict:
        lines.append(confirmation.verdict)
    return lines


def confirm_search(search: SearchFile, experiment: Experiment, summary: Summary, record: RunRecord, *,
                   count_other_rays: bool, interrupted, verbose: bool = False, links: list[str] = (),
                   **trial_kwargs: Any) -> tuple[Summary, str, Optional[str]]:
    """The stage after a finished search, with the search's concurrency on what the cluster can grow to; (the summary
    with its confirmation, summary.json's path, the stall guard's line or None)."""
    workers = search.trial_config({}).workers
    concurrency = max_concurrent_trials(workers, search.max_concurrent_trials, cluster_capacity(count_other_rays))
    confirmation, stalled = run_stage(search, experiment, summary, record, concurrency, verbose=verbose, links=links,
                                      interrupted=interrupted, **trial_kwargs)
    if confirmation is not None:
        summary.confirmation = confirmation
    return summary, summary.write(experiment), stalled
