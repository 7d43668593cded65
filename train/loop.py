"""The per-worker training loop: one function for Ray Train workers, a Tune trial process, or a bare process.

Data stays as memory-mapped uint8 arrays (shared by every trial on a node through the page cache),
or, on a GPU with room for it, as one uint8 copy on the GPU (:mod:`train.data.batches`); each step takes one
batch on the device, augments it there with Kornia and normalises it, with no host synchronisation. Every random
stream (shuffle, augmentation, dropout) is re-seeded from (seed, epoch, rank) at the start of each epoch, so a run
resumed from an epoch-end checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from infra import hold
from train import checkpoint as checkpoints
from train import schedule
from train.config import TrialConfig
from train.data.augment import build_augment
from train.data.batches import batch_bounds, batch_sources, fixed_bounds
from train.data.prepared import PreparedData, prepare
from train.device import amp_dtype
from train.freeze import apply_frozen_bn_eval, set_backbone_trainable
from train.metrics import REPORTED_AGAIN, Epoch
from train.model import build_model, input_normalization
from train.session import LocalSession, Session, checkpoint_scratch


class Trainer:
    """Model, optimizer, schedule and data of one worker; `fit` runs the remaining epochs."""

    def __init__(self, cfg: TrialConfig, session: Session, data: Optional[PreparedData] = None,
                 data_key: Optional[str] = None):
        """``data_key``: the cache entry the driver prepared (PreparedData.cache_key), opened without
        re-listing the source; ``data``: already prepared arrays (in-process callers)."""
        self.cfg = cfg
        self.session = session
        self.device = session.device(cfg.workers)
        self.cuda = self.device.type == "cuda"
        threads = cfg.workers.threads_per_worker or max(1, int(cfg.workers.cpus_per_worker))
        torch.set_num_threads(threads)
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels once
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.data = data if data is not None else prepare(cfg.data, cache_key=data_key, decode_threads=threads)
        self.train_batches, self.val_batches = batch_sources(self.data.train, self.data.val, self.device,
                                                             cfg.data.gpu_cache_fraction,
                                                             gpu_share=cfg.workers.gpus_per_worker or 1.0)
        self.model = build_model(cfg.model, num_classes=len(self.data.class_names)).to(self.device)
        if self.cuda and cfg.amp:
            self.model = self.model.to(memory_format=torch.channels_last)
        mean, std = input_normalization(self.model)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self.augment = build_augment(cfg.augment).to(self.device)
        self.ddp_model: nn.Module = self.model
        self.frozen: Optional[bool] = None
        self.optimizer = _build_optimizer(cfg, self.model)
        self.steps_per_epoch = math.ceil(self._shard_length(len(self.data.train.labels)) / cfg.optim.batch_size)
        self.scheduler = schedule.warmup_cosine(self.optimizer, cfg, self.steps_per_epoch)
        self.amp_dtype = amp_dtype(self.device, cfg.amp)
        # Loss scaling is only needed for float16; bfloat16 has float32's exponent range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.restored_metrics: Optional[dict[str, Any]] = None
        """What the restored checkpoint's epoch reported (None: a fresh run, or a checkpoint without them)."""
        self.reported: list[dict[str, Any]] = []  # every epoch's reported numbers so far, kept in each checkpoint
        self.start_epoch = self._restore()
        self.first_step_at: Optional[float] = None  # wall clock of this run's first optimizer step (benchmarks)

    # -- set-up -------------------------------------------------------------------------------
    def _wrap_ddp(self) -> nn.Module:
        """DDP over the currently trainable parameters (re-wrapped whenever freezing changes).

        DDP registers the parameters that require grad when it is built; wrapping after freezing
        keeps frozen ones out of the all-reduce, so they never get (zero) gradients that AdamW would
        then decay.
        """
        model = self.model
        if self.session.world_size > 1:
            device_ids = [self.device] if self.cuda else None  # this rank's own GPU, as Ray assigned it
            model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        if self.cfg.compile and self.cuda:
            model = torch.compile(model)
        return model

    def _shard_length(self, n: int) -> int:
        return n // self.session.world_size

    def _restore(self) -> int:
        checkpoint = self.session.restored_checkpoint()
        if checkpoint is None:
            return 0
        with checkpoint.as_directory() as folder:
            state = checkpoints.load_state(Path(folder), self.device)
            self.restored_metrics = checkpoints.read_metrics(Path(folder))
            self.reported = checkpoints.read_history(Path(folder))
        self.model.load_state_dict(state["model"])
        schedule.resume(self.scheduler, state["scheduler"])  # before the optimizer's learning rate is restored
        self.optimizer.load_state_dict(state["optimizer"])
        checkpoints.load_scaler(self.scaler, state["scaler"])
        return state["epoch"] + 1

    # -- epochs -------------------------------------------------------------------------------
    def fit(self) -> list[Epoch]:
        if self.restored_metrics is not None:
            # The restored checkpoint's epoch, reported again (the same row, the same ``trained_at``: reported
            # twice, trained once). A search killed after the checkpoint was written and before Tune saved the
            # epoch's row to storage (Ray Train hands its report to Tune after the commit; Tune copies result.json
            # with its state) would otherwise miss that row for good; and restored from the final epoch's
            # checkpoint nothing is left to train, but the trial must end with its numbers (ASHA and the summary
            # need the metric). Where Tune has the row already, the repeat is marked and readers skip it.
            self.session.report({**self.restored_metrics, REPORTED_AGAIN: True}, None)
        if self.start_epoch >= self.cfg.epochs:
            return []
        history = []
        for epoch in range(self.start_epoch, self.cfg.epochs):
            hold.in_training("epoch_start", self.session, epoch + 1)  # test-only pause point (infra/hold.py)
            _seed_epoch(self.cfg.seed, epoch, self.session.world_rank)
            self._set_frozen(epoch)
            train_loss, images_per_s, epoch_s = self._train_epoch(epoch)
            val_loss, val_acc = self.evaluate()
            result = Epoch(epoch, train_loss, val_loss, val_acc, self.scheduler.get_last_lr()[0],
                           images_per_s, epoch_s)
            history.append(result)
            self._report(result)
        return history

    def _set_frozen(self, epoch: int) -> None:
        model_cfg = self.cfg.model
        frozen = model_cfg.freeze_backbone and (model_cfg.unfreeze_epoch is None or epoch < model_cfg.unfreeze_epoch)
        if frozen != self.frozen:
            set_backbone_trainable(self.model, not frozen)
            self.frozen = frozen
            self.ddp_model = self._wrap_ddp()

    def _train_epoch(self, epoch: int) -> tuple[float, float, float]:
        """(mean train loss, images/s over all workers, seconds) of one epoch."""
        self.ddp_model.train()
        if self.frozen:
            apply_frozen_bn_eval(self.model)
        order = _epoch_order(len(self.data.train.labels), self.cfg.seed, epoch,
                             self.session.world_rank, self.session.world_size)
        loss_sum, seen, start = torch.zeros((), device=self.device), 0, time.perf_counter()
        for pixels, labels in self.train_batches(order, batch_bounds(len(order), self.steps_per_epoch)):
            images = self._prepare_images(pixels, train=True)
            loss = self._step(images, labels)
            if self.first_step_at is None:
                self.first_step_at = time.time()
            loss_sum += loss.detach() * len(labels)  # stays on the device: no host sync per step
            seen += len(labels)
        loss_total = loss_sum.item()  # waits for the GPU's queued steps: the clock below counts them
        elapsed = time.perf_counter() - start
        total_loss, total_seen = _all_reduce_sum(self.device, loss_total, float(seen))
        return total_loss / total_seen, total_seen / elapsed, elapsed

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = self.ddp_model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.optim.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss

    def _prepare_images(self, pixels: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 NHWC on the device -> augmented (training only), normalised float NCHW."""
        images = pixels.permute(0, 3, 1, 2).float().div_(255.0)
        if train:
            images = self.augment(images)
        images = (images - self.mean) / self.std
        if self.cuda and self.cfg.amp:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    @torch.no_grad()
    def evaluate(self, batches=None) -> tuple[float, float]:
        """(mean loss, accuracy) over the validation split (or ``batches``, a source of :mod:`train.data.batches`);
        each rank takes a slice, sums stay on the device and are all-reduced once."""
        batches = batches or self.val_batches
        self.ddp_model.eval()
        mine = np.array_split(np.arange(len(batches)), self.session.world_size)[self.session.world_rank]
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, correct count
        batch = self.cfg.optim.batch_size * 4  # no activations kept for backward, so larger batches fit
        for pixels, labels in batches(mine, fixed_bounds(len(mine), batch)):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = self.model(self._prepare_images(pixels, train=False)).float()
            sums[0] += F.cross_entropy(logits, labels, reduction="sum")
            sums[1] += (logits.argmax(1) == labels).sum()
        loss_sum, correct, count = _all_reduce_sum(self.device, *sums.tolist(), float(len(mine)))
        return loss_sum / max(count, 1.0), correct / max(count, 1.0)

    # -- reporting ----------------------------------------------------------------------------
    def _report(self, result: Epoch) -> None:
        # node_id: where the epoch ran (cluster tests); trained_at: when it finished (wall clock, s), the same in a
        # row reported again after a resume, so "trained once" can be checked from result.json.
        metrics = {**result.as_metrics(), "node_id": _ray_node_id(), "trained_at": time.time()}
        if result.epoch == self.start_epoch:  # the run's first report says when training really began
            metrics["first_step_at"] = self.first_step_at
        if self.session.world_rank == 0:
            print(_format_epoch(metrics, self.cfg.epochs), flush=True)
        with checkpoint_scratch() as folder:
            has_checkpoint = self.session.world_rank == 0  # one copy of the weights is enough
            self.reported.append(metrics)
            if has_checkpoint:
                self._save(folder, result.epoch, metrics)
            self.session.report(metrics, folder if has_checkpoint else None)
        hold.after_checkpoint(self.session, metrics["epoch"])  # test-only pause point (infra/hold.py)

    def _save(self, folder: Path, epoch: int, metrics: dict[str, Any]) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            # Every random stream is re-seeded from these at each epoch start (see _seed_epoch).
            "rng": {"seed": self.cfg.seed, "next_epoch": epoch + 1},
            "class_names": self.data.class_names,
            "data_fingerprint": self.data.fingerprint,
        }
        checkpoints.save(folder, state, self.cfg, metrics, self.reported)


def run(cfg: TrialConfig, session: Session, data: Optional[PreparedData] = None,
        data_key: Optional[str] = None) -> list[Epoch]:
    """Train from the session's last checkpoint (if any) to ``cfg.epochs``, reporting every epoch."""
    return Trainer(cfg, session, data, data_key).fit()


def run_local(cfg: TrialConfig, checkpoint_root: Optional[Path] = None) -> list[Epoch]:
    """The loop as a bare process, no Ray involved (benchmarks, debugging)."""
    return run(cfg, LocalSession(checkpoint_root=checkpoint_root))


# -- helpers ------------------------------------------------------------------------------------
def _ray_node_id() -> Optional[str]:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _build_optimizer(cfg: TrialConfig, model: nn.Module) -> torch.optim.Optimizer:
    optim = cfg.optim
    # Every parameter is handed to the optimizer even when frozen: unfreezing later needs no rebuild,
    # and frozen parameters have no gradient, so AdamW/SGD skip them (weight decay included).
    params = list(model.parameters())
    if optim.optimizer == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, nesterov=True,
                               weight_decay=optim.weight_decay)
    return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63 - 1)


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Augmentation and dropout draw from torch's global RNG; pin it per (seed, epoch, rank)."""
    torch.manual_seed(_epoch_seed(seed, epoch, rank))


def _epoch_order(n: int, seed: int, epoch: int, rank: int, world_size: int) -> np.ndarray:
    """This rank's sample indices for one epoch: a shared seeded shuffle, cut to a multiple of the world
    size, strided by rank.

    All ranks draw the same permutation (seed, epoch) and take every world_size-th index, so the shards are
    disjoint and equally long (DDP needs the same number of steps on every rank): no image is seen twice in
    an epoch, and the last ``n % world_size`` of the shuffle (fewer than one per rank, a different few each
    epoch) are left out of it, as ``DistributedSampler(drop_last=True)`` does. One worker sees every image.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[: n - n % world_size][rank::world_size]


def _all_reduce_sum(device: torch.device, *values: float) -> tuple[float, ...]:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tuple(tensor.tolist())


def _format_epoch(metrics: dict[str, Any], epochs: int) -> str:
    return (f"epoch {metrics['epoch']}/{epochs}  train_loss {metrics['train_loss']:.4f}  "
            f"val_loss {metrics['val_loss']:.4f}  val_acc {metrics['val_acc']:.4f}  "
            f"lr {metrics['lr']:.2e}  {metrics['images_per_s']:.0f} img/s")
