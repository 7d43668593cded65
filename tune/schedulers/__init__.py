"""Who stops trials early, one module per scheduler, behind a registry (as tune/engines/ for the searchers).

Each module ``tune/schedulers/<name>.py`` holds ``SCHEDULER`` (tune/schedulers/scheduler.py): how to build its Tune
scheduler for a search and what people call it. ``budget.scheduler`` names one (``none`` is
``budget.early_stopping: false``). Adding a scheduler: its module here, and its name in :data:`SCHEDULERS`; the search
file accepts the name from there (tune/space.py). Tune saves no scheduler state: each one rebuilds its view of a
restored trial from the trial's result.json rows (:func:`tune.schedulers.scheduler.result_rows`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tune.schedulers.scheduler import Scheduler
    from tune.space import Budget, SearchFile

SCHEDULERS = ("asha", "wandb_hyperband", "none")
"""Every scheduler, each the name of its module in this package. Imported when used, not here: Ray is a slow import
that checking a search file never needs."""

NO_EARLY_STOPPING = "none"
"""The scheduler of ``budget.early_stopping: false``: every trial runs to trial.epochs (not a budget.scheduler)."""


def scheduler_name(budget: "Budget") -> str:
    """The scheduler a budget runs: budget.scheduler, or ``none`` without early stopping."""
    return budget.scheduler if budget.early_stopping else NO_EARLY_STOPPING


def get_scheduler(name: str) -> "Scheduler":
    if name not in SCHEDULERS:
        raise KeyError(f"scheduler {name!r} is not one of {', '.join(SCHEDULERS)}")
    return importlib.import_module(f"{__name__}.{name}").SCHEDULER


def create_scheduler(search: "SearchFile"):
    """The Tune scheduler of ``search``."""
    return get_scheduler(scheduler_name(search.budget)).create(search)


def stopper_name(budget: "Budget") -> str:
    """Who stops trials early, for people (budget.scheduler, also when early stopping is off: the progress display
    and reports name the scheduler a search was written for)."""
    return get_scheduler(budget.scheduler).label
