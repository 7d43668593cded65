"""What a search leaves behind: summary.json and a re-runnable best_config.yaml.

summary.json: ``experiment``, ``experiment_dir``, ``metric``, ``mode``, ``best`` (the best trial's
entry; null when no trial reported the metric), ``trials``, ``num_trials``, ``num_errors``,
``total_epochs``, ``max_epochs``, ``wall_s`` (every session of the search, ``--resume`` included),
``interrupted``, ``data_fingerprint``, ``versions``.

Each trial entry: ``trial_id``, ``status``, ``error``, ``params``, ``config``, ``epochs``, ``metrics``,
``path``, ``checkpoint``.

- ``status``: ``TERMINATED`` (finished, or stopped early by ASHA) or ``ERROR`` (failed: its retries
  used up, or a configuration, data or disk error, which is never retried). Only an interrupted
  search (``"interrupted": true``) has ``UNFINISHED`` trials: started or waiting to start, and
  continued from their last checkpoint by ``--resume``.
- ``error``: the failure's one line, or null.
- ``path`` and ``checkpoint``: relative to the experiment folder (``trial_<id>``,
  ``trial_<id>/checkpoint_000003``, ``train_runs/train_<id>/checkpoint_...`` for multi-worker
  trials), so a moved or copied experiment still reads; summaries written before this was so hold
  absolute paths, and readers accept both.
"""

from __future__ import annotations

import json
import math
import posixpath
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import pyarrow.fs
import yaml
from ray.tune import ResultGrid

from tune.space import SearchFile, sampled_params
from tune.storage import Experiment
from tune.trial import TRIAL_ERROR

KEY_PACKAGES = ("ray", "torch", "torchvision", "timm", "kornia", "optuna", "wandb", "numpy", "pydantic")
METRIC_KEYS = ("val_acc", "val_loss", "train_loss", "lr", "images_per_s", "epoch", "training_iteration",
               "time_total_s")
UNFINISHED = "UNFINISHED"


def package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in KEY_PACKAGES}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def tune_statuses(experiment: Experiment) -> dict[str, str]:
    """Trial id -> Tune's status, from the experiment state Tune saved last (it saves a running trial
    as PENDING)."""
    from ray.tune import ExperimentAnalysis

    return {trial.trial_id: trial.status for trial in ExperimentAnalysis(experiment.uri).trials}


def relative(path: Optional[str], experiment: Experiment) -> Optional[str]:
    """``path`` (a storage path of Tune or Train) relative to the experiment folder, when inside it."""
    if not path:
        return path
    _, root = pyarrow.fs.FileSystem.from_uri(experiment.uri)
    inner = path.split("://", 1)[-1] if "://" in path else path
    root = root.rstrip("/")
    if inner == root or not inner.startswith(root + "/"):
        return path
    return posixpath.relpath(inner, root)


def _trial_entry(result, search: SearchFile, experiment: Experiment, status: Optional[str]) -> dict[str, Any]:
    metrics = result.metrics or {}
    failure = metrics.get(TRIAL_ERROR) or (error_line(result.error) if result.error else None)
    if failure:
        state = "ERROR"
    elif status in (None, "TERMINATED"):
        state = "TERMINATED"
    else:  # PENDING / RUNNING / PAUSED: what an interrupted search leaves
        state = UNFINISHED
    checkpoint = result.checkpoint.path if result.checkpoint else metrics.get("checkpoint_path")
    return {
        "trial_id": _trial_id(result),
        "status": state,
        "error": failure,
        "params": sampled_params(result.config, search.space),
        "config": result.config,
        "epochs": _epochs(result),
        "metrics": {key: _clean(metrics[key]) for key in METRIC_KEYS if key in metrics},
        "path": relative(result.path, experiment),
        "checkpoint": relative(checkpoint, experiment),
    }


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
                  data_fingerprint: str, statuses: dict[str, str], interrupted: bool) -> dict[str, Any]:
    """summary.json's content (see the module docstring)."""
    trials = [_trial_entry(result, search, experiment, statuses.get(_trial_id(result))) for result in results]
    scored = [t for t in trials if t["metrics"].get(search.metric) is not None]
    pick = max if search.mode == "max" else min
    best = pick(scored, key=lambda t: t["metrics"][search.metric]) if scored else None
    return {
        "experiment": search.experiment,
        "experiment_dir": experiment.uri,
        "metric": search.metric,
        "mode": search.mode,
        "best": best,
        "trials": trials,
        "num_trials": len(trials),
        "num_errors": sum(t["status"] == "ERROR" for t in trials),
        "total_epochs": sum(t["epochs"] for t in trials),
        "max_epochs": search.trial.epochs,
        "wall_s": round(wall_s, 2),
        "interrupted": interrupted,
        "data_fingerprint": data_fingerprint,
        "versions": package_versions(),
    }


def write_summary(summary: dict[str, Any], search: SearchFile, experiment: Experiment) -> str:
    """Write summary.json (and best_config.yaml when there is a best trial); return summary.json's path or URI."""
    best = summary["best"]
    if best is not None:
        header = (f"# Best trial {best['trial_id']} of {search.experiment}: {search.metric}="
                  f"{best['metrics'][search.metric]}\n"
                  f"# Re-run: python train/train_model.py --config {experiment.child('best_config.yaml')}\n")
        experiment.write_text("best_config.yaml", header + yaml.safe_dump(best["config"], sort_keys=False))
    return experiment.write_text("summary.json", json.dumps(summary, indent=2, default=str))
