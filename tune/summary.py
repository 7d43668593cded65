"""What a finished search leaves behind: summary.json and a re-runnable best_config.yaml."""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from ray.tune import ResultGrid

from tune.space import SearchFile, sampled_params
from tune.storage import Experiment

KEY_PACKAGES = ("ray", "torch", "torchvision", "timm", "kornia", "optuna", "wandb", "numpy", "pydantic")
METRIC_KEYS = ("val_acc", "val_loss", "train_loss", "lr", "images_per_s", "epoch", "training_iteration",
               "time_total_s")


def package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in KEY_PACKAGES}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _trial_entry(result, search: SearchFile) -> dict[str, Any]:
    metrics = result.metrics or {}
    return {
        "trial_id": metrics.get("trial_id") or Path(result.path).name,
        "status": "ERROR" if result.error else "TERMINATED",
        "error": str(result.error).splitlines()[0] if result.error else None,
        "params": sampled_params(result.config, search.space),
        "config": result.config,
        # The loop's own epoch count: right even where a retried trial restarted Tune's iteration count.
        "epochs": int(metrics.get("epoch", metrics.get("training_iteration", 0))),
        "metrics": {key: _clean(metrics[key]) for key in METRIC_KEYS if key in metrics},
        "path": result.path,
        "checkpoint": result.checkpoint.path if result.checkpoint else metrics.get("checkpoint_path"),
    }


def write_summary(results: ResultGrid, search: SearchFile, experiment: Experiment, *,
                  wall_s: float, data_fingerprint: str) -> str:
    """Write summary.json and best_config.yaml into the experiment; return summary.json's path or URI."""
    trials = [_trial_entry(result, search) for result in results]
    scored = [t for t in trials if t["metrics"].get(search.metric) is not None]
    if not scored:
        raise RuntimeError(f"no trial reported '{search.metric}'; see the trial errors in {experiment.uri}")
    pick = max if search.mode == "max" else min
    best = pick(scored, key=lambda t: t["metrics"][search.metric])
    summary = {
        "experiment": search.experiment,
        "experiment_dir": experiment.uri,
        "metric": search.metric,
        "mode": search.mode,
        "best": best,
        "trials": trials,
        "num_trials": len(trials),
        "num_errors": sum(t["status"] == "ERROR" for t in trials),
        "total_epochs": sum(t["epochs"] for t in trials),
        "max_epochs": search.budget.max_epochs,
        "wall_s": round(wall_s, 2),
        "data_fingerprint": data_fingerprint,
        "versions": package_versions(),
    }
    header = (f"# Best trial {best['trial_id']} of {search.experiment}: {search.metric}="
              f"{best['metrics'][search.metric]}\n"
              f"# Re-run: python train/train_model.py --config {experiment.child('best_config.yaml')}\n")
    experiment.write_text("best_config.yaml", header + yaml.safe_dump(best["config"], sort_keys=False))
    return experiment.write_text("summary.json", json.dumps(summary, indent=2, default=str))
