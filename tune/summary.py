"""What a search leaves behind: its :class:`~tune.experiment.records.Summary`, built from Tune's results.

The schema (and the writing of summary.json and best_config.yaml) is the experiment contract's
(tune/experiment/records.py); this module turns Tune's ``ResultGrid`` and saved trial states into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from ray.tune import ResultGrid

from train.metrics import REPORTED_METRICS
from tune.distributions import sampled_params
from tune.experiment import layout
from tune.experiment.records import ERROR, NOT_STARTED, TERMINATED, UNFINISHED, Summary, TrialRecord
from tune.experiment.storage import Experiment
from tune.objectives import LATENCY_METRIC
from tune.space import SearchFile
from tune.trial import TRIAL_ERROR
from tune.trial_checkpoints import TRAIN_CHECKPOINT, paired

KEY_PACKAGES = ("ray", "torch", "torchvision", "timm", "kornia", "optuna", "wandb", "numpy", "pydantic")
SUMMARY_METRICS = (*REPORTED_METRICS, LATENCY_METRIC, "epoch", "training_iteration", "time_total_s")
"""What summary.json keeps of a trial's last report: the loop's metrics, latency_ms (multi-objective searches), its
epoch and Tune's counters."""


def package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in KEY_PACKAGES}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class SavedTrial:
    """A trial as Tune's experiment state (the one --resume reads) saved it last."""

    status: str
    """Tune's status (it saves a running trial as PENDING)."""
    config: dict[str, Any]
    """The trial config the searcher sampled (also for a trial that never reported)."""


def saved_trials(experiment: Experiment) -> dict[str, SavedTrial]:
    """Trial id -> its saved state, from the experiment state Tune saved last."""
    from ray.tune import ExperimentAnalysis

    return {trial.trial_id: SavedTrial(trial.status, trial.config)
            for trial in ExperimentAnalysis(experiment.uri).trials}


def _trial_record(result, search: SearchFile, experiment: Experiment, saved: Optional[SavedTrial]) -> TrialRecord:
    metrics = result.metrics or {}
    status = saved.status if saved is not None else None
    failure = metrics.get(TRIAL_ERROR) or (error_line(result.error) if result.error else None)
    if failure:
        state = ERROR
    elif status in (None, TERMINATED):
        state = TERMINATED
    elif "epoch" not in metrics:  # sampled (PENDING), or started and stopped within its first epoch
        state = NOT_STARTED
    else:  # PENDING / RUNNING / PAUSED after some epochs: what an interrupted search leaves
        state = UNFINISHED
    # A trial that never reported has no config in its (empty) last result: the one Tune saved for it.
    config = result.config or (saved.config if saved is not None else None)
    # A multi-worker trial's weights are in Ray Train's checkpoint (Tune's is a pointer: tune/train_relay.py).
    checkpoint = _train_checkpoint(result) or (result.checkpoint.path if result.checkpoint else None)
    if checkpoint is not None and "epoch" in metrics:
        # The checkpoint of the epoch whose numbers these are (an interrupted search may have registered only
        # the one before): the summary, export and the model card then speak of one epoch.
        fs = result.checkpoint.filesystem if result.checkpoint else experiment.filesystem()
        checkpoint, metrics = paired(fs, checkpoint, metrics)
    return TrialRecord(
        trial_id=_trial_id(result), status=state, error=failure,
        error_file=_error_file(result, experiment) if failure else None,
        params=sampled_params(config, search.space), config=config, epochs=_epochs(result),
        metrics={key: _clean(metrics[key]) for key in SUMMARY_METRICS if key in metrics},
        path=experiment.relative(result.path), checkpoint=experiment.relative(checkpoint))


def _train_checkpoint(result) -> Optional[str]:
    """A multi-worker trial's last Ray Train checkpoint: the one its reports name (tune/train_relay.py), from the
    last row that has one (a report repeated after a resume has none). None for a 1-worker trial."""
    path = (result.metrics or {}).get(TRAIN_CHECKPOINT)
    rows = result.metrics_dataframe
    if path is None and rows is not None and TRAIN_CHECKPOINT in rows:
        known = rows[TRAIN_CHECKPOINT].dropna()
        path = str(known.iloc[-1]) if len(known) else None
    return path


def _error_file(result, experiment: Experiment) -> Optional[str]:
    """The failed trial's error text kept in the experiment (tune/watch.py), relative to it; None for a
    permanent error, which the trial reported as its one line without raising."""
    name = layout.error_file(_trial_id(result))
    return name if experiment.has(name) else None


def _trial_id(result) -> str:
    return (result.metrics or {}).get("trial_id") or Path(result.path).name.removeprefix("trial_")


def _epochs(result) -> int:
    """Epochs the trial trained: the loop's own count (right even where a retried trial restarted
    Tune's iteration count), from every row when the last one is a failure report without it."""
    metrics = result.metrics or {}
    if "epoch" in metrics:
        return int(metrics["epoch"])
    rows = result.metrics_dataframe
    if rows is not None and "epoch" in rows and rows["epoch"].notna().any():
        return int(rows["epoch"].max())
    return 0 if TRIAL_ERROR in metrics else int(metrics.get("training_iteration", 0))


def error_line(error: BaseException) -> str:
    """One line for a trial's error: the original exception behind Ray's wrappers."""
    cause = getattr(error, "cause", None)  # RayTaskError: the exception the trial raised
    if isinstance(cause, BaseException):
        text = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def build_summary(results: ResultGrid, search: SearchFile, experiment: Experiment, *, wall_s: float,
                  data_fingerprint: str, saved: dict[str, SavedTrial], interrupted: bool,
                  latency: Optional[dict[str, Any]] = None) -> Summary:
    """The search's summary (tune/experiment/records.py); ``latency``: how latency_ms was measured."""
    trials = [_trial_record(result, search, experiment, saved.get(_trial_id(result))) for result in results]
    scored = [t for t in trials if t.metrics.get(search.metric) is not None]
    pick = max if search.mode == "max" else min
    best = pick(scored, key=lambda t: t.metrics[search.metric]) if scored else None
    return Summary(
        experiment=search.experiment, experiment_dir=experiment.uri, metric=search.metric, mode=search.mode,
        best=best, trials=trials, num_trials=len(trials), num_errors=sum(t.status == ERROR for t in trials),
        total_epochs=sum(t.epochs for t in trials), epochs=search.trial.epochs, wall_s=round(wall_s, 2),
        interrupted=interrupted, data_fingerprint=data_fingerprint, versions=package_versions(),
        **_multi_objective(search, experiment, latency))


def _multi_objective(search: SearchFile, experiment: Experiment, latency: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Summary's objectives, front and latency settings; nothing for a single-objective search."""
    if search.objectives is None:
        return {}
    from tune.front import front_trial_ids

    return {"objectives": search.objectives, "front": front_trial_ids(experiment, search.objectives),
            "latency": latency}


def summary_line(summary_path: str) -> str:
    """The search's one line (the console's next-to-last), with the confirmed winner when there is one."""
    from tune.experiment.storage import read_text

    summary = Summary.model_validate_json(read_text(summary_path))
    best = summary.best
    line = (f"best {summary.metric}={best.metrics[summary.metric]:.4f} (trial {best.trial_id}, "
            f"{best.epochs} epochs); {summary.num_trials} trials, {summary.total_epochs} epochs "
            f"in {summary.wall_s:.0f} s")
    confirmation = summary.confirmation
    if confirmation is not None and confirmation.winner is not None:
        line += (f"; confirmation: {confirmation.total_epochs} epochs in {confirmation.wall_s:.0f} s, winner trial "
                 f"{confirmation.winner}" + (f" (not distinguishable at {len(confirmation.seeds)} seeds)"
                                             if confirmation.distinguishable is False else ""))
    return line
