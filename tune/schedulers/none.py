"""No early stopping (``budget.early_stopping: false``): every trial runs to trial.epochs, a baseline."""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler

from tune.schedulers.scheduler import Scheduler


def create(search: Any) -> FIFOScheduler:
    return FIFOScheduler()


SCHEDULER = Scheduler(name="none", label="none", create=create)
