"""Run a search: Ray up, the search file's engine (tune/engines/) and scheduler (tune/schedulers/) over its space,
W&B logging, summary at the end."""

from __future__ import annotations

import os
import time
from datetime import datetime
from functools import partial
from typing import Optional

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.tune.stopper import CombinedStopper

from infra import hold
from infra.atomic_fs import ray_storage
from infra.connect import RayConnection
from infra.signals import stopped_code
from train.config import ConfigError
from tune import moved, preflight
from tune.cluster import cluster_capacity
from tune.confirmation.stage import confirm_search
from tune.engine_label import engine_name
from tune.engines import get_engine
from tune.engines.study import StudySearcher
from tune.experiment.layout import SEARCH_FILE, TRAIN_RUNS, study_url, trial_dirname
from tune.experiment.records import NOT_STARTED, UNFINISHED, RunRecord, Summary
from tune.experiment.storage import Experiment
from tune.hold_points import HoldPoints
from tune.interrupt import Interrupts
from tune.latency import LatencyTable, measure_search
from tune.objectives import LATENCY_METRIC
from tune.progress import CompactReporter, use_compact_engine
from tune.resume import (
    ExtendableSearch,
    check_same_data,
    continue_search,
    find_experiment,
    has_saved_state,
    raise_budget,
)
from tune.schedulers import create_scheduler, stopper_name
from tune.search_outcome import SearchInterrupted, no_result
from tune.sizes import prepare_sizes
from tune.space import SearchFile
from tune.summary import build_summary, saved_trials
from tune.trial import (
    TRIAL_ERROR,
    describe_workers,
    idle_gpu_warnings,
    max_concurrent_trials,
    reuse_trial_processes,
    run_trial,
    trial_resources,
)
from tune.trial_checkpoints import align_for_resume
from tune.watch import ErrorFiles, ReleaseTrainResources, SearchStalled, StallGuard, stall_reason


def _searcher(search: SearchFile, experiment: Experiment, concurrency: int) -> StudySearcher:
    """The engine's searcher over the study in study.db (contract B); created here, so the dashboard has it from
    the start."""
    folder = experiment.local_dir()  # SQLite needs a local file: for s3:// storage, ./runs/<name>
    folder.mkdir(parents=True, exist_ok=True)
    searcher = get_engine(search.searcher.algorithm).searcher(search, storage_url=study_url(folder),
                                                          study_name=experiment.name, concurrency=concurrency)
    searcher.open()  # study.db exists (and the warm-start points are queued) before Tune starts
    return searcher


def _callbacks(search: SearchFile, experiment: Experiment, stall_guard: StallGuard, holds: HoldPoints) -> list:
    callbacks = [ErrorFiles(experiment.uri), ReleaseTrainResources(), stall_guard, holds]
    if not search.wandb.enabled:
        return callbacks
    from tune.wandb_logging import WandbTrialLogger

    # One run per trial, all from this process (one W&B service); offline without WANDB_API_KEY.
    return callbacks + [WandbTrialLogger(project=search.wandb.project, entity=search.wandb.entity,
                                         group=experiment.name, directory=experiment.local_dir(),
                                         engine=engine_name(search))]


def _stall_guard(search: SearchFile, experiment: Experiment) -> StallGuard:
    workers = search.trial_config({}).workers
    return StallGuard(experiment.uri, search.failure.stall_timeout_s, describe_workers(workers))


def _trainable(search: SearchFile, experiment: Experiment, data_key: str, data_keys: Optional[dict[int, str]] = None,
               latencies: Optional[LatencyTable] = None):
    base = search.trial_config({})
    driver = partial(run_trial, storage_path=experiment.child(TRAIN_RUNS), metric=search.metric,
                     data_key=data_key, data_keys=data_keys or None, latencies=latencies)
    return tune.with_resources(driver, trial_resources(base.workers))


def _trial_dirname(trial) -> str:
    return trial_dirname(trial.trial_id)


def _reporter(search: SearchFile, verbose: bool, links: list[str], experiment_uri: str) -> Optional[CompactReporter]:
    """The compact display (tune/progress.py), unless --verbose asks for Ray's own output."""
    if verbose:
        return None
    use_compact_engine()
    return CompactReporter(list(search.space), metric=search.metric, mode=search.mode,
                           epochs=search.trial.epochs, links=links, experiment_uri=experiment_uri,
                           stopper=stopper_name(search.budget))


def build_tuner(search: SearchFile, experiment: Experiment, resume: bool, data_key: str, *, verbose: bool = False,
                dashboard: Optional[str] = None, data_keys: Optional[dict[int, str]] = None,
                latencies: Optional[LatencyTable] = None, count_other_rays: bool = True) -> tune.Tuner:
    """``data_keys``: the cache entry of each searched image size; ``latencies``: latency_ms per architecture
    (multi-objective searches with a latency objective)."""
    trainable = _trainable(search, experiment, data_key, data_keys, latencies)
    optuna_dashboard = f"optuna-dashboard {study_url(experiment.local_dir())}"
    print(f"Optuna study: {optuna_dashboard}", flush=True)
    links = ([f"Ray dashboard: {dashboard}"] * bool(dashboard)
             + [f"Optuna study: {optuna_dashboard}", f"Experiment: {experiment.uri}"])
    # Tuner.restore takes the run config pickled with the experiment (its reporter included); the call
    # still picks the output engine, which Tune reads when fit() starts.
    reporter = _reporter(search, verbose, links, experiment.uri)
    # Tune saves its experiment state (what --resume reads) after every trial checkpoint (see
    # CheckpointConfig below); with short epochs that is often, and meant, so its warning about
    # snapshotting often is noise (the variable is Tune's documented way to turn it off).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    base = search.trial_config({})
    # What the cluster can grow to (an autoscaling cluster's max_workers), not just what is up now. Checked on
    # --resume too: a search continued on a smaller Ray than its trials need is one line, not a wait forever.
    capacity = cluster_capacity(count_other_rays)
    concurrency = max_concurrent_trials(base.workers, search.max_concurrent_trials, capacity)
    print(f"max concurrent trials: {concurrency} ({search.max_concurrent_trials}; "
          f"{capacity.describe()})", flush=True)
    for line in idle_gpu_warnings(base.workers, capacity):
        print(line, flush=True)
    if resume:
        # A raised budget.num_samples, and the trials the saved state holds (tune/resume.py).
        raise_budget(search.budget.num_samples, len(saved_trials(experiment)))
        for line in align_for_resume(experiment.uri):  # the saved state behind its trials' folders
            print(f"resume: {line}", flush=True)
        path, filesystem = ray_storage(experiment.uri)
        moved.install()  # an experiment pickled before tune/engines/ and tune/schedulers/ names the old paths
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=filesystem)
    scheduler = create_scheduler(search)
    stall_guard = _stall_guard(search, experiment)
    holds = HoldPoints()  # test-only pauses (infra/hold.py); nothing unless $SIGNSEARCH_HOLD asks
    # The budget and the concurrency limit wrap the searcher here (not through TuneConfig) so that a
    # resumed search can raise the budget.
    searcher = _searcher(search, experiment, concurrency)
    storage_path, storage_filesystem = ray_storage(experiment.root)
    search_alg = ExtendableSearch(ConcurrencyLimiter(searcher, max_concurrent=concurrency))
    return tune.Tuner(
        trainable,
        param_space=base.to_dict(),
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                    num_samples=search.budget.num_samples,
                                    reuse_actors=reuse_trial_processes(base.workers),
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=experiment.name,
            # Files written whole on a local path (infra/atomic_fs.py): a kill never cuts off the search state.
            storage_path=storage_path, storage_filesystem=storage_filesystem,
            callbacks=_callbacks(search, experiment, stall_guard, holds),
            stop=CombinedStopper(stall_guard, holds),
            failure_config=tune.FailureConfig(max_failures=search.failure.max_failures),
            # One per trial, and Tune saves its experiment state after each new one (it does so after
            # every num_to_keep checkpoints of a trial): --resume after a kill then continues every
            # trial from the checkpoint it last wrote, and knows every trial that reported. A
            # checkpoint is registered only once wholly written, so no older one is needed.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # Verbosity 1 on Tune's legacy engine: the reporter's lines and tables, nothing per trial.
            progress_reporter=reporter, verbose=1 if reporter else None,
        ),
    )


def run(search: SearchFile, *, storage: str, resume: Optional[str] = None,
        ray_connection: RayConnection = RayConnection(), source: str = "search file",
        overrides: tuple[str, ...] | list[str] = (), verbose: bool = False) -> str:
    """Run (or resume) the search; return the path (or URI) of its summary.json.

    Raises ConfigError/DataError (one line, before Ray starts), SearchInterrupted (Ctrl-C) and
    SearchFailed (no trial reported the metric; ConfigError when every trial failed on a
    configuration or data error).
    """
    experiment = record = None
    if resume:
        experiment = find_experiment(storage, search, resume)
        search, source = continue_search(experiment, list(overrides))
        record = RunRecord.read(experiment)
    preflight.check(search, source, experiment.root if experiment else storage)
    # Once, here (once per searched image size): bad data fails fast, trials hit the cache.
    data, data_keys = prepare_sizes(search)
    print(f"data: {data.format} at {search.trial.data.root} — {len(data.class_names)} classes, "
          f"{len(data.train.labels)} train / {len(data.val.labels)} val images", flush=True)
    if experiment is not None:
        check_same_data(record, data.fingerprint, experiment)
        record = record or RunRecord(data_fingerprint=data.fingerprint)
    else:
        experiment = Experiment.create(storage, f"{search.experiment}-{datetime.now():%Y%m%d-%H%M%S}")
        experiment.write_text(SEARCH_FILE, search.dump())
        record = RunRecord(data_fingerprint=data.fingerprint)
    record.sessions += 1
    record.write(experiment)
    interrupts = Interrupts()
    try:
        latencies = None
        if any(objective.metric == LATENCY_METRIC for objective in search.objective_list):
            # Before Ray starts: the machine is idle, and a resumed search reads the same numbers back.
            latencies = measure_search(search, experiment, len(data.class_names))
        # A stop, or a cluster that never answers, while joining ends the process at once (infra/connect.py):
        # a new search's folder goes with it.
        dashboard = ray_connection.connect(on_abort=(lambda: None) if resume else experiment.remove)
        # From here on, after ray.init (which replaces any SIGTERM handler set before it): Ctrl-C and SIGTERM.
        with interrupts:
            print(f"Ray dashboard: {dashboard}", flush=True)
            tuner = build_tuner(search, experiment, resume=bool(resume), data_key=data.cache_key,
                                verbose=verbose, dashboard=dashboard, data_keys=data_keys, latencies=latencies,
                                # --num-cpus sizes the embedded Ray as asked; without it, "auto" concurrency counts
                                # only the cores other Ray instances on this machine leave free.
                                count_other_rays=ray_connection.num_cpus is None)
            # The trials' time only: Ray's start, data preparation and the summary are not the search's work,
            # and would add ~20 s to every --resume of a finished search.
            with record.clock(experiment, time.monotonic()):
                results = tuner.fit()
            # Still inside: a signal while the summary is written stops at once (KeyboardInterrupt below), and
            # summary.json is written whole (by rename) or not at all.
            summary, path, stalled = _write_summary(results, search, experiment, record, data.fingerprint,
                                                    latencies, interrupts)
            if search.confirm.top_k and stalled is None and not (summary.interrupted or interrupts.count):
                stops = interrupts.count
                summary, path, stalled = confirm_search(
                    search, experiment, summary, record, count_other_rays=ray_connection.num_cpus is None,
                    interrupted=lambda: interrupts.count > stops, verbose=verbose,
                    links=[f"Experiment: {experiment.uri}"],
                    data_key=data.cache_key, data_keys=data_keys or None, latencies=latencies)
    except KeyboardInterrupt as stop:
        ray.shutdown()
        if not resume and not has_saved_state(experiment):
            experiment.remove()  # nothing of the search was saved: leave no folder to resume from
            raise SearchInterrupted(None, None, stopped_code(stop)) from None
        raise SearchInterrupted(experiment, None, stopped_code(stop)) from None
    except BaseException:
        if not resume and not has_saved_state(experiment):
            experiment.remove()
        raise
    ray.shutdown()  # flushes the workers' forwarded logs, so the summary path really is the last line
    if stalled is not None:
        raise SearchStalled(stalled)
    unconfirmed = summary.confirmation is not None and summary.confirmation.status == "unfinished"
    if summary.interrupted or interrupts.count or unconfirmed:  # a stop asked for is a stop, also with nothing left
        raise SearchInterrupted(experiment, path, interrupts.exit_code)
    if summary.best is None:
        permanent = [r.metrics[TRIAL_ERROR] for r in results if (r.metrics or {}).get(TRIAL_ERROR)]
        if permanent and len(permanent) == summary.num_trials:
            raise ConfigError(permanent[0])  # every trial failed on a configuration, data or disk error
        raise no_result(summary, search, experiment)
    return path


def _write_summary(results, search: SearchFile, experiment: Experiment, record: RunRecord, fingerprint: str,
                   latencies: Optional[LatencyTable], interrupts: Interrupts) -> tuple[Summary, str, Optional[str]]:
    """Build and write summary.json after ``fit()``; (summary, its path, the stall guard's line or None)."""
    hold.at("summary", 0)  # test-only pause point (infra/hold.py)
    summary = build_summary(results, search, experiment, wall_s=record.wall_s, data_fingerprint=fingerprint,
                            saved=saved_trials(experiment), interrupted=False,
                            latency=latencies.settings() if latencies is not None else None)
    unfinished = any(t.status in (UNFINISHED, NOT_STARTED) for t in summary.trials)
    stalled = stall_reason(experiment)
    summary.interrupted = ((interrupts.count > 0 or stalled is not None)
                           and (unfinished or summary.num_trials < search.budget.num_samples))
    summary.stalled = stalled
    return summary, summary.write(experiment), stalled
