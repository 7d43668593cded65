"""The name of a search's engine (proposals + early stopping), as W&B runs, compare reports and the bench label it."""

from __future__ import annotations

from tune.space import Budget, SearchFile


def engine_name(search: SearchFile) -> str:
    """e.g. ``tpe+asha``, ``wandb_bayes+wandb_hyperband``, ``random+none`` (no early stopping)."""
    stopping = search.budget.scheduler if search.budget.early_stopping else "none"
    return f"{search.searcher.algorithm}+{stopping}"


def stopper_name(budget: Budget) -> str:
    """Who stops trials early, for people: ASHA or W&B hyperband (budget.scheduler)."""
    return "W&B hyperband" if budget.scheduler == "wandb_hyperband" else "ASHA"
