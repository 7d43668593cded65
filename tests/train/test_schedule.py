"""The learning-rate schedule (train/schedule.py, torch's SequentialLR) equals the hand-written warm-up + cosine it
replaced, step for step: fresh, resumed from its own checkpoint, and resumed from a checkpoint of the old LambdaLR."""

from __future__ import annotations

import math

import pytest
import torch

from train import schedule
from train.config import parse

PEAK = 2e-3


def reference(warmup_epochs: float, epochs: int, steps_per_epoch: int):
    """The schedule as train/loop.py computed it before (its LambdaLR factor, copied unchanged)."""
    warmup = int(warmup_epochs * steps_per_epoch)
    total = max(epochs * steps_per_epoch, warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK, momentum=0.9)


def _lrs(scheduler, optimizer, steps: int) -> list[float]:
    """The learning rate the optimizer uses at each step, as the loop steps it (optimizer, then schedule)."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


CASES = [(0.5, 6, 7), (0.0, 4, 5), (1.0, 3, 1), (2.5, 3, 4), (0.3, 5, 3), (10.0, 2, 3), (0.0, 1, 1)]
"""(warmup_epochs, epochs, steps_per_epoch): the default, no warm-up, one step per epoch (warm-up of one step), a
warm-up of fractional epochs, one longer than the run, and a run of one step."""


@pytest.mark.parametrize("warmup_epochs, epochs, steps_per_epoch", CASES)
def test_the_schedule_equals_the_hand_written_one(warmup_epochs, epochs, steps_per_epoch):
    cfg = parse({"epochs": epochs, "optim": {"lr": PEAK, "warmup_epochs": warmup_epochs}})
    optimizer = _optimizer()
    got = _lrs(schedule.warmup_cosine(optimizer, cfg, steps_per_epoch), optimizer, epochs * steps_per_epoch)
    factor = reference(warmup_epochs, epochs, steps_per_epoch)
    assert got == pytest.approx([PEAK * factor(step) for step in range(epochs * steps_per_epoch)], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("old_checkpoint", [False, True], ids=["its own checkpoint", "a LambdaLR checkpoint"])
@pytest.mark.parametrize("warmup_epochs, epochs, steps_per_epoch", CASES)
def test_a_resumed_schedule_continues_at_the_step_it_stopped(warmup_epochs, epochs, steps_per_epoch, old_checkpoint):
    """As the loop resumes (train/loop.py _restore): a fresh schedule, then the optimizer's saved state."""
    cfg = parse({"epochs": epochs, "optim": {"lr": PEAK, "warmup_epochs": warmup_epochs}})
    factor = reference(warmup_epochs, epochs, steps_per_epoch)
    stop = epochs // 2 * steps_per_epoch  # an epoch-end checkpoint in the middle (epoch 0 for one-epoch runs)
    before = _optimizer()
    if old_checkpoint:
        scheduler = torch.optim.lr_scheduler.LambdaLR(before, factor)
    else:
        scheduler = schedule.warmup_cosine(before, cfg, steps_per_epoch)
    _lrs(scheduler, before, stop)
    saved = {"optimizer": before.state_dict(), "scheduler": scheduler.state_dict()}

    after = _optimizer()
    resumed = schedule.warmup_cosine(after, cfg, steps_per_epoch)
    schedule.resume(resumed, saved["scheduler"])
    after.load_state_dict(saved["optimizer"])
    got = _lrs(resumed, after, epochs * steps_per_epoch - stop)
    expected = [PEAK * factor(step) for step in range(stop, epochs * steps_per_epoch)]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)
