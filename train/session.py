"""Where the training loop reports to: Ray Train workers, a Ray Tune trial process, or a bare process.

The loop in :mod:`train.loop` is the same function in all three; only the session differs. A
1-worker Tune trial runs the loop in its own process through :func:`tune_session`, skipping the
Train worker-group start (~10 s per trial on a small node), which ASHA would otherwise pay once per
trial.
"""

from __future__ import annotations

import errno
import posixpath
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import torch

from train.config import WorkersConfig
from train.device import bare_process_device, pick_device, ray_gpu_ids, train_worker_device, tune_trial_device
from train.metrics import TRAIN_PLACEMENT_GROUP


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

    def __init__(self, api: Any, world_rank: int, world_size: int, assigned_device: Callable[[], torch.device],
                 tags: Optional[dict[str, Any]] = None, resume_from: Optional[str] = None) -> None:
        """``tags``: values added to every report (where the run trains; see :func:`ray_train_session`).
        ``resume_from``: the checkpoint (path or URI) to start from when Ray has none for this run."""
        self.api = api
        self.resume_from = resume_from
        self.world_rank = world_rank
        self.world_size = world_size
        self.assigned_device = assigned_device
        self.tags = tags or {}

    def device(self, workers: WorkersConfig) -> torch.device:
        return pick_device(workers, ray_gpu_ids(), self.assigned_device)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        checkpoint = self.api.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        sizes = {path.name: path.stat().st_size for path in checkpoint_dir.iterdir()} if checkpoint_dir else {}
        self.api.report({**metrics, **self.tags}, checkpoint=checkpoint)
        if sizes:  # after report, get_checkpoint() is the copy on storage
            check_persisted(self.api.get_checkpoint(), sizes)

    def restored_checkpoint(self) -> Any:
        checkpoint = self.api.get_checkpoint()
        if checkpoint is None and self.resume_from is not None:
            checkpoint = self.api.Checkpoint(self.resume_from)
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                check_complete(Path(folder), checkpoint.path)
        return checkpoint


def ray_train_session(tags: Optional[dict[str, Any]] = None, resume_from: Optional[str] = None) -> RaySession:
    """Inside a ``TorchTrainer`` worker (Ray Train V2): ranks come from the Train context; ``tags``: values added to
    every report (the placement group's id is added here); ``resume_from``: see :class:`RaySession`."""
    import ray.train

    context = ray.train.get_context()
    # The worker group's placement group, reported so that the search driver can release it when Tune ends
    # the trial (tune/watch.py ReleaseTrainResources): Ray Train V2 ties it to the search's job, not to the
    # trial, and a trial that Tune stops (ASHA, max_t) never gets to remove it itself.
    group = ray.util.get_current_placement_group()
    tags = {**(tags or {}), **({TRAIN_PLACEMENT_GROUP: group.id.hex()} if group is not None else {})}
    return RaySession(ray.train, context.get_world_rank(), context.get_world_size(), train_worker_device, tags,
                      resume_from)


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


def check_persisted(persisted: Any, sizes: dict[str, int]) -> None:
    """Every file of a reported checkpoint reached storage whole; a full disk can cut one short
    without the copy failing. Raises OSError(ENOSPC) naming the checkpoint: every retry would hit it."""
    if persisted is None:
        return
    for name, size in sizes.items():
        info = persisted.filesystem.get_file_info(posixpath.join(persisted.path, name))
        if info.size != size:
            raise OSError(errno.ENOSPC, f"checkpoint file {name} reached storage short ({info.size} of {size} "
                                        f"bytes); is the storage full?", persisted.path)


def check_complete(folder: Path, shown: str) -> None:
    """A checkpoint to resume from must be whole: its torch archives (*.pt, zip files) pass their CRC
    checks. A cut-off one is never trusted: DataError (one line), not a retry on garbage."""
    from train.data import DataError

    for archive in sorted(folder.glob("*.pt")):
        try:
            with zipfile.ZipFile(archive) as opened:
                bad = opened.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            bad = f"{type(error).__name__}: {error}"
        if bad is not None:
            raise DataError(f"checkpoint {shown}: {archive.name} is cut off or corrupt ({bad}), so the "
                            f"trial is not resumed from it (was its storage full?)")


@contextmanager
def checkpoint_scratch() -> Iterator[Path]:
    """A temporary folder that lives until the report has copied the checkpoint to storage."""
    with tempfile.TemporaryDirectory(prefix="signsearch-ckpt-") as folder:
        yield Path(folder)
