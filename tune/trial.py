"""One Tune trial: a function trainable that trains one sampled config.

Ray 2.60 runs Ray Train V2, where a Tune trial is a *driver* function: a multi-worker trial builds a
``TorchTrainer`` whose workers report through ``TuneReportCallback``. A 1-worker trial runs the very
same loop in the trial's own process, which saves the worker-group start (~10 s) on every trial.
"""

from __future__ import annotations

from typing import Any, Optional

import ray.tune

from train.config import ConfigError, WorkersConfig, parse
from tune.cluster import Capacity, max_trials

# CPU a multi-worker trial's driver reserves: it only waits on its TorchTrainer.
DRIVER_CPU = 0.05


def run_trial(config: dict[str, Any], storage_path: str, data_key: Optional[str] = None) -> None:
    """Train ``config``; a retried trial resumes from its last checkpoint (Tune's or Train's).

    ``data_key``: the cache entry the search's driver prepared, opened by name (no re-listing of the source).
    """
    cfg = parse(config)
    if cfg.workers.num_workers == 1:
        from train.loop import run
        from train.session import tune_session

        run(cfg, tune_session(), data_key=data_key)
        return
    from ray.tune.integration.ray_train import TuneReportCallback

    from train.launch import torch_trainer

    # Named by the trial id: a retry of this trial finds the run's checkpoints and resumes.
    trial_id = ray.tune.get_context().get_trial_id()
    torch_trainer(cfg, name=f"train_{trial_id}", storage_path=storage_path, data_key=data_key,
                  callbacks=[TuneReportCallback()]).fit()


def trial_resources(workers: WorkersConfig) -> dict[str, float]:
    """What Tune reserves for the trial itself (a multi-worker trial's workers reserve their own)."""
    if workers.num_workers > 1:
        return {"cpu": DRIVER_CPU}
    return {"cpu": workers.cpus_per_worker, "gpu": workers.gpus_per_worker}


def max_concurrent_trials(workers: WorkersConfig, setting: int | str, capacity: Capacity) -> int:
    """``setting``, or for "auto" the trials that fit at once on what the cluster can grow to.

    ``capacity`` (:func:`tune.cluster.cluster_capacity`) counts every node type of an autoscaling
    cluster at its max_workers, not just the nodes up now: Tune must queue enough trials for the
    autoscaler to see demand for them. Workers are packed per node (a GPU worker never lands on a
    CPU-only head), fractional GPUs put several workers on one GPU.
    """
    if setting != "auto":
        return int(setting)
    per_worker = {"CPU": workers.cpus_per_worker, "GPU": workers.gpus_per_worker}
    fits = max_trials(capacity, per_worker, workers.num_workers,
                      driver_cpu=DRIVER_CPU if workers.num_workers > 1 else 0.0)
    if fits < 1:
        wanted = ", ".join(f"{value:g} {key}" for key, value in per_worker.items() if value > 0)
        raise ConfigError(f"resources: no node of this cluster, now or after autoscaling, fits a trial "
                          f"({workers.num_workers} worker(s) of {wanted}); cluster: {capacity.describe()}")
    return fits
