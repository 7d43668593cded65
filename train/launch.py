"""Build the Ray Train ``TorchTrainer`` that runs one training config on a worker group."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, UserCallback
from ray.train.torch import TorchConfig, TorchTrainer

from infra.atomic_fs import ray_storage
from train.config import TrialConfig, WorkersConfig
from train.worker import train_loop_per_worker

START_RETRIES = 10
"""Times Ray Train tries to place a trial's worker group (each try waits 60 s) before the trial fails."""


def scaling_config(workers: WorkersConfig) -> ScalingConfig:
    """One Ray Train worker per DDP rank, each reserving its CPUs/GPUs (fractions allowed), placed as
    ``workers.placement`` says (one node by default)."""
    resources = {"CPU": workers.cpus_per_worker}
    if workers.gpus_per_worker > 0:
        resources["GPU"] = workers.gpus_per_worker
    return ScalingConfig(num_workers=workers.num_workers, use_gpu=workers.gpus_per_worker > 0,
                         resources_per_worker=resources, placement_strategy=workers.placement.upper())


def process_group_backend(workers: WorkersConfig) -> str:
    """NCCL when the workers train on GPUs, gloo otherwise (CPU workers, or the fake cluster's logical GPUs).

    Said explicitly rather than left to TorchTrainer, which picks NCCL for any GPU request, and NCCL cannot
    start on a worker whose GPU is only a label.
    """
    return "nccl" if workers.gpus_per_worker > 0 and not workers.fake_gpus else "gloo"


def torch_trainer(cfg: TrialConfig, *, name: str, storage_path: str, data_key: Optional[str] = None,
                  callbacks: Sequence[UserCallback] = (), max_failures: int = 0,
                  tags: Optional[dict[str, Any]] = None, resume_from: Optional[str] = None) -> TorchTrainer:
    """A TorchTrainer for ``cfg``; the same ``name`` + ``storage_path`` resumes from the last checkpoint.

    ``data_key``: the cache entry the driver prepared (``PreparedData.cache_key``), opened by the workers.
    ``tags``: values the workers add to every report (train/session.py RaySession.tags; a search's latency_ms).
    ``resume_from``: a checkpoint (path or URI) the workers start from when this run has none of its own (Ray Train
    V2 deprecates ``resume_from_checkpoint``; its docs pass the checkpoint through the loop's config instead).

    Ray Train V2 reloads a run's checkpoint manager from storage when a run of that name already
    exists there, so a retried Tune trial (named by its trial id) continues where it stopped.
    """
    # Files written whole on a local path (infra/atomic_fs.py): a kill never cuts off the run's snapshot.
    storage_path, storage_filesystem = ray_storage(storage_path)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"trial": cfg.to_dict(), "data_key": data_key, "tags": dict(tags or {}),
                           "resume_from": resume_from},
        scaling_config=scaling_config(cfg.workers),
        torch_config=TorchConfig(backend=process_group_backend(cfg.workers)),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            callbacks=list(callbacks),
            # Ray Train retries a worker group it cannot place (every RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S,
            # 60 s) without end by default (-1); bounded, a trial whose workers never fit fails after ~10 min
            # with Train's own "worker group startup timed out" line instead of waiting in RUNNING forever.
            failure_config=FailureConfig(max_failures=max_failures, controller_failure_limit=START_RETRIES),
            # The latest checkpoint is all a resume needs; older ones only fill the disk.
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
