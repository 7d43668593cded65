"""Build the Ray Train ``TorchTrainer`` that runs one training config on a worker group."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, UserCallback
from ray.train.torch import TorchConfig, TorchTrainer
from ray.train.torch.config import _TorchBackend

from train.config import TrialConfig, WorkersConfig
from train.worker import torch_sees_cuda, train_loop_per_worker


def scaling_config(workers: WorkersConfig) -> ScalingConfig:
    """One Ray Train worker per DDP rank, each reserving its CPUs/GPUs (fractions allowed)."""
    resources = {"CPU": workers.cpus_per_worker}
    if workers.gpus_per_worker > 0:
        resources["GPU"] = workers.gpus_per_worker
    return ScalingConfig(num_workers=workers.num_workers, use_gpu=workers.gpus_per_worker > 0,
                         resources_per_worker=resources)


class _SeenDeviceBackend(_TorchBackend):
    """Backend "auto": NCCL where the workers' torch sees CUDA, else gloo.

    Ray's GPUs can be logical (its fake multi-node cluster labels CPU-only processes with GPUs), and
    NCCL cannot start without a CUDA device; the loop picks its device the same way.
    """

    def on_start(self, worker_group, backend_config):
        if backend_config.backend == "auto":
            cuda = worker_group.execute_single(0, torch_sees_cuda)
            backend_config = replace(backend_config, backend="nccl" if cuda else "gloo")
        super().on_start(worker_group, backend_config)


class SeenDeviceTorchConfig(TorchConfig):
    """``TorchConfig`` with backend "auto" (TorchTrainer would pick NCCL for any GPU request)."""

    def __init__(self, **kwargs):
        super().__init__(**{"backend": "auto", **kwargs})

    @property
    def backend_cls(self):
        return _SeenDeviceBackend


def torch_trainer(cfg: TrialConfig, *, name: str, storage_path: str,
                  callbacks: Sequence[UserCallback] = (), max_failures: int = 0) -> TorchTrainer:
    """A TorchTrainer for ``cfg``; the same ``name`` + ``storage_path`` resumes from the last checkpoint.

    Ray Train V2 reloads a run's checkpoint manager from storage when a run of that name already
    exists there, so a retried Tune trial (named by its trial id) continues where it stopped.
    """
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=cfg.to_dict(),
        scaling_config=scaling_config(cfg.workers),
        torch_config=SeenDeviceTorchConfig(),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            callbacks=list(callbacks),
            failure_config=FailureConfig(max_failures=max_failures),
            # The latest checkpoint is all a resume needs; older ones only fill the disk.
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
