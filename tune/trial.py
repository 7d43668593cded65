"""One Tune trial: a function trainable that trains one sampled config.

Ray 2.60 runs Ray Train V2, where a Tune trial is a *driver* function: a multi-worker trial builds a
``TorchTrainer`` whose workers report through ``TuneReportCallback``. A 1-worker trial runs the very
same loop in the trial's own process, which saves the worker-group start (~10 s) on every trial.
"""

from __future__ import annotations

import math
from typing import Any

import ray.tune

from train.config import WorkersConfig, parse

# CPU a multi-worker trial's driver reserves: it only waits on its TorchTrainer.
DRIVER_CPU = 0.05


def run_trial(config: dict[str, Any], storage_path: str) -> None:
    """Train ``config``; a retried trial resumes from its last checkpoint (Tune's or Train's)."""
    cfg = parse(config)
    if cfg.workers.num_workers == 1:
        from train.loop import run
        from train.session import TuneSession

        run(cfg, TuneSession())
        return
    from ray.tune.integration.ray_train import TuneReportCallback

    from train.launch import torch_trainer

    # Named by the trial id: a retry of this trial finds the run's checkpoints and resumes.
    trial_id = ray.tune.get_context().get_trial_id()
    torch_trainer(cfg, name=f"train_{trial_id}", storage_path=storage_path,
                  callbacks=[TuneReportCallback()]).fit()


def trial_resources(workers: WorkersConfig) -> dict[str, float]:
    """What Tune reserves for the trial itself (a multi-worker trial's workers reserve their own)."""
    if workers.num_workers > 1:
        return {"cpu": DRIVER_CPU}
    return {"cpu": workers.cpus_per_worker, "gpu": workers.gpus_per_worker}


def max_concurrent_trials(workers: WorkersConfig, setting: int | str, cluster: dict[str, float]) -> int:
    """``setting``, or for "auto" the trials that fit the cluster's CPUs (and GPUs) at once."""
    if setting != "auto":
        return int(setting)
    cpus = workers.num_workers * workers.cpus_per_worker + (DRIVER_CPU if workers.num_workers > 1 else 0.0)
    fits = [cluster.get("CPU", 1.0) / cpus]
    if workers.gpus_per_worker > 0:
        fits.append(cluster.get("GPU", 0.0) / (workers.num_workers * workers.gpus_per_worker))
    return max(1, math.floor(min(fits) + 1e-9))
