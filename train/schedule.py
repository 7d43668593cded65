"""The learning-rate schedule: linear warm-up, then cosine decay to zero at the last step, stepped once per
optimizer step; torch's ``SequentialLR`` of ``LinearLR`` and ``CosineAnnealingLR``.

Step ``s`` (0-based, the optimizer steps taken) with ``W = int(optim.warmup_epochs * steps_per_epoch)`` warm-up steps
and ``T = max(epochs * steps_per_epoch, W + 1)`` steps in all has ``lr = optim.lr * (s + 1) / W`` while ``s < W``,
then ``optim.lr * (1 + cos(pi * (s - W) / (T - W))) / 2`` (tests/train/test_schedule.py holds this formula and
checks the schedule against it, step for step, resumed ones included).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from train.config import TrialConfig


def warmup_cosine(optimizer: torch.optim.Optimizer, cfg: TrialConfig, steps_per_epoch: int) -> LRScheduler:
    warmup = int(cfg.optim.warmup_epochs * steps_per_epoch)
    total = max(cfg.epochs * steps_per_epoch, warmup + 1)
    if warmup == 0:
        return CosineAnnealingLR(optimizer, T_max=total, eta_min=0.0)
    # (s + 1) / W of the peak at step s: from 1/W at step 0 to 1 at step W - 1 (LinearLR's total_iters steps later).
    linear = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=max(1, warmup - 1))
    cosine = CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=0.0)
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def resume(scheduler: LRScheduler, saved: dict[str, Any]) -> None:
    """Continue ``scheduler`` (just built) at the step a checkpoint saved it at. Call it before the optimizer's
    ``load_state_dict``: the optimizer's restored learning rate is then the one the next step continues from.

    A checkpoint written before the schedule came from torch holds a ``LambdaLR``'s state (``lr_lambdas``), whose
    ``last_epoch`` is the steps taken: the schedule is stepped as far (the same values, the same formula).
    """
    if "lr_lambdas" not in saved:
        scheduler.load_state_dict(saved)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()": meant here
        for _ in range(saved["last_epoch"]):
            scheduler.step()
