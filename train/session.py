"""Where the training loop reports to: Ray Train workers, a Ray Tune trial process, or a bare process.

The loop in :mod:`train.loop` is the same function in all three; only the session differs. A
1-worker Tune trial runs the loop in its own process through :func:`tune_session`, skipping the
Train worker-group start (~10 s per trial on a small node), which ASHA would otherwise pay once per
trial.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import torch

from train.config import WorkersConfig
from train.device import bare_process_device, pick_device, ray_gpu_ids, train_worker_device, tune_trial_device


class Session(Protocol):
    """What the loop needs from its host: rank, world size, its device, reporting and the last checkpoint."""

    world_rank: int
    world_size: int

    def device(self, workers: WorkersConfig) -> torch.device: ...

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None: ...

    def restored_checkpoint(self) -> Any: ...


class RaySession:
    """Reports and checkpoints through Ray: ``ray.train`` in a TorchTrainer worker, ``ray.tune`` in a trial.

    Both modules offer the same ``report(metrics, checkpoint=...)``, ``get_checkpoint()`` and
    ``Checkpoint``; Ray Train V2 forbids ``ray.train.report`` inside a plain Tune trial, hence two APIs.
    """

    def __init__(self, api: Any, world_rank: int, world_size: int, assigned_device: Callable[[], torch.device]) -> None:
        self.api = api
        self.world_rank = world_rank
        self.world_size = world_size
        self.assigned_device = assigned_device

    def device(self, workers: WorkersConfig) -> torch.device:
        return pick_device(workers, ray_gpu_ids(), self.assigned_device)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        checkpoint = self.api.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        self.api.report(metrics, checkpoint=checkpoint)

    def restored_checkpoint(self) -> Any:
        return self.api.get_checkpoint()


def ray_train_session() -> RaySession:
    """Inside a ``TorchTrainer`` worker (Ray Train V2): ranks come from the Train context."""
    import ray.train

    context = ray.train.get_context()
    return RaySession(ray.train, context.get_world_rank(), context.get_world_size(), train_worker_device)


def tune_session() -> RaySession:
    """A 1-worker trial running the loop in the Tune trial's own process."""
    import ray.tune

    return RaySession(ray.tune, world_rank=0, world_size=1, assigned_device=tune_trial_device)


class LocalSession:
    """A bare process (benchmarks, debugging): reports go to a callback, checkpoints to a folder."""

    world_rank = 0
    world_size = 1

    def __init__(self, on_report: Callable[[dict[str, Any]], None] = lambda metrics: None,
                 checkpoint_root: Optional[Path] = None) -> None:
        self.on_report = on_report
        self.checkpoint_root = checkpoint_root
        self.last_checkpoint: Optional[Path] = None

    def device(self, workers: WorkersConfig) -> torch.device:
        return bare_process_device()

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        if checkpoint_dir is not None and self.checkpoint_root is not None:
            import shutil

            target = self.checkpoint_root / f"checkpoint_{metrics['epoch']:04d}"
            shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
            self.last_checkpoint = target
        self.on_report(metrics)

    def restored_checkpoint(self) -> Any:
        return None


@contextmanager
def checkpoint_scratch() -> Iterator[Path]:
    """A temporary folder that lives until the report has copied the checkpoint to storage."""
    with tempfile.TemporaryDirectory(prefix="signsearch-ckpt-") as folder:
        yield Path(folder)
