"""Run a search: Ray up, Optuna TPE + ASHA over a search file's space, W&B logging, summary at the end."""

from __future__ import annotations

import time
from datetime import datetime
from functools import partial
from typing import Any, Optional

import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from train.cache import prepare
from train.config import ConfigError
from train.connect import RayConnection
from tune.cluster import cluster_capacity
from tune.progress import CompactReporter, use_compact_engine
from tune.searcher import StudySearcher, study_url
from tune.space import SearchFile
from tune.storage import Experiment, experiments, normalise, read_text
from tune.summary import write_summary
from tune.trial import max_concurrent_trials, run_trial, trial_resources

SEARCH_FILE = "search.yaml"


def find_experiment(storage: str, search: SearchFile, resume: Optional[str]) -> Experiment:
    """A new timestamped experiment for a new search; for --resume, the given one or the newest."""
    if resume is None:
        return Experiment(normalise(storage), f"{search.experiment}-{datetime.now():%Y%m%d-%H%M%S}")
    if resume != "latest":
        experiment = Experiment.at(resume)
        if not experiment.has(SEARCH_FILE):
            raise ConfigError(f"--resume {resume}: not an experiment folder (no {SEARCH_FILE} inside)")
        return experiment
    earlier = experiments(storage, f"{search.experiment}-", SEARCH_FILE)
    if not earlier:
        raise ConfigError(f"--resume: no earlier '{search.experiment}' experiment under {normalise(storage)}")
    return earlier[-1]


def _searcher(search: SearchFile, experiment: Experiment, concurrency: int) -> StudySearcher:
    """Optuna over the study in study.db (contract B); created here, so the dashboard has it from the start."""
    folder = experiment.local_dir()  # SQLite needs a local file: for s3:// storage, ./runs/<name>
    folder.mkdir(parents=True, exist_ok=True)
    searcher = StudySearcher(search.space, search.searcher, metric=search.metric, mode=search.mode,
                             max_epochs=search.budget.max_epochs, storage_url=study_url(folder),
                             study_name=experiment.name, concurrency=concurrency)
    searcher.open()  # study.db exists (and the warm-start points are queued) before Tune starts
    return searcher


def _callbacks(search: SearchFile, experiment: Experiment) -> list:
    if not search.wandb.enabled:
        return []
    from tune.wandb_logging import WandbTrialLogger

    # One run per trial, all from this process (one W&B service); offline without WANDB_API_KEY.
    return [WandbTrialLogger(project=search.wandb.project, entity=search.wandb.entity, group=experiment.name,
                             directory=experiment.local_dir())]


def _trainable(search: SearchFile, experiment: Experiment, data_key: str):
    base = search.trial_config({})
    driver = partial(run_trial, storage_path=experiment.child("train_runs"), data_key=data_key)
    return tune.with_resources(driver, trial_resources(base.workers))


def _scheduler(search: SearchFile):
    budget = search.budget
    if not budget.early_stopping:
        return tune.schedulers.FIFOScheduler()
    # "epoch" (not training_iteration): a retried multi-worker trial restarts Tune's iteration count
    # at 1 while its TorchTrainer resumes from the checkpoint's epoch.
    return ASHAScheduler(metric=search.metric, mode=search.mode, time_attr="epoch",
                         max_t=budget.max_epochs, grace_period=budget.grace_period,
                         reduction_factor=budget.reduction_factor)


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def _reporter(search: SearchFile, verbose: bool, links: list[str]) -> Optional[CompactReporter]:
    """The compact display (tune/progress.py), unless --verbose asks for Ray's own output."""
    if verbose:
        return None
    use_compact_engine()
    return CompactReporter(list(search.space), metric=search.metric, mode=search.mode,
                           max_epochs=search.budget.max_epochs, links=links)


def build_tuner(search: SearchFile, experiment: Experiment, resume: bool, data_key: str, *, verbose: bool = False,
                dashboard: Optional[str] = None) -> tune.Tuner:
    trainable = _trainable(search, experiment, data_key)
    optuna_dashboard = f"optuna-dashboard {study_url(experiment.local_dir())}"
    print(f"Optuna study: {optuna_dashboard}", flush=True)
    links = ([f"Ray dashboard: {dashboard}"] * bool(dashboard)
             + [f"Optuna study: {optuna_dashboard}", f"Experiment: {experiment.uri}"])
    # Tuner.restore takes the run config pickled with the experiment (its reporter included); the call
    # still picks the output engine, which Tune reads when fit() starts.
    reporter = _reporter(search, verbose, links)
    if resume:
        return tune.Tuner.restore(experiment.uri, trainable=trainable, resume_unfinished=True, resume_errored=True)
    base = search.trial_config({})
    scheduler = _scheduler(search)
    # What the cluster can grow to (an autoscaling cluster's max_workers), not just what is up now.
    capacity = cluster_capacity()
    concurrency = max_concurrent_trials(base.workers, search.resources.max_concurrent_trials, capacity)
    print(f"max concurrent trials: {concurrency} ({search.resources.max_concurrent_trials}; "
          f"{capacity.describe()})", flush=True)
    searcher = _searcher(search, experiment, concurrency)
    return tune.Tuner(
        trainable,
        param_space=base.to_dict(),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=search.budget.num_samples, max_concurrent_trials=concurrency,
                                    # A reused trial process has torch/timm imported already: ~5 s less
                                    # start-up per trial, which ASHA would otherwise pay on every trial.
                                    reuse_actors=True, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=experiment.name,
            storage_path=experiment.root,
            callbacks=_callbacks(search, experiment),
            failure_config=tune.FailureConfig(max_failures=search.failure.max_failures),
            # Two per trial: the latest for resuming, one before it in case the latest is cut off.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # Verbosity 1 on Tune's legacy engine: the reporter's lines and tables, nothing per trial.
            progress_reporter=reporter, verbose=1 if reporter else None,
        ),
    )


def run(search: SearchFile, *, storage: str, resume: Optional[str] = None,
        ray_connection: RayConnection = RayConnection(), verbose: bool = False) -> str:
    """Run (or resume) the search; return the path (or URI) of its summary.json."""
    experiment = find_experiment(storage, search, resume)
    if resume:  # the search as it was started: overrides given now do not apply
        search = SearchFile(**yaml.safe_load(experiment.read_text(SEARCH_FILE)))
    data = prepare(search.trial_config({}).data)  # once, here: bad data fails fast, trials hit the cache
    print(f"data: {data.format} at {search.dataset.get('root')} — {len(data.class_names)} classes, "
          f"{len(data.train.labels)} train / {len(data.val.labels)} val images", flush=True)
    dashboard = ray_connection.connect()
    print(f"Ray dashboard: {dashboard}", flush=True)
    if not resume:
        experiment.write_text(SEARCH_FILE, yaml.safe_dump(search.model_dump(mode="json"), sort_keys=False))
    start = time.monotonic()
    results = build_tuner(search, experiment, resume=bool(resume), data_key=data.cache_key, verbose=verbose,
                          dashboard=dashboard).fit()
    summary = write_summary(results, search, experiment, wall_s=time.monotonic() - start,
                            data_fingerprint=data.fingerprint)
    ray.shutdown()  # flushes the workers' forwarded logs, so the summary path really is the last line
    return summary


def summary_line(summary_path: str) -> str:
    import json

    summary: dict[str, Any] = json.loads(read_text(summary_path))
    best = summary["best"]
    return (f"best {summary['metric']}={best['metrics'][summary['metric']]:.4f} (trial {best['trial_id']}, "
            f"{best['epochs']} epochs); {summary['num_trials']} trials, {summary['total_epochs']} epochs "
            f"in {summary['wall_s']:.0f} s")
