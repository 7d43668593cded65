"""Where the training loop reports to: Ray Train workers, a Ray Tune trial process, or a bare process.

The loop in :mod:`train.loop` is the same function in all three; only the session differs. A
1-worker Tune trial runs the loop in its own process through :class:`TuneSession`, skipping the
Train worker-group start (~10 s per trial on a small node), which ASHA would otherwise pay once per
trial.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol


class Session(Protocol):
    """What the loop needs from its host: rank, world size, reporting and the last checkpoint."""

    world_rank: int
    world_size: int

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None: ...

    def restored_checkpoint(self) -> Any: ...


class RayTrainSession:
    """Inside a ``TorchTrainer`` worker (Ray Train V2): ranks come from the Train context."""

    def __init__(self) -> None:
        import ray.train

        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)

    def restored_checkpoint(self) -> Any:
        import ray.train

        return ray.train.get_checkpoint()


class TuneSession:
    """A 1-worker trial running the loop in the Tune trial's own process."""

    world_rank = 0
    world_size = 1

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        import ray.tune

        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)

    def restored_checkpoint(self) -> Any:
        import ray.tune

        return ray.tune.get_checkpoint()


class LocalSession:
    """A bare process (benchmarks, debugging): reports go to a callback, checkpoints to a folder."""

    world_rank = 0
    world_size = 1

    def __init__(self, on_report: Callable[[dict[str, Any]], None] = lambda metrics: None,
                 checkpoint_root: Optional[Path] = None) -> None:
        self.on_report = on_report
        self.checkpoint_root = checkpoint_root
        self.last_checkpoint: Optional[Path] = None

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
