"""A search's engine as one label: what proposes trials (tune/engines/) and what stops them early (tune/schedulers/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tune.schedulers import scheduler_name

if TYPE_CHECKING:
    from tune.space import SearchFile


def engine_name(search: SearchFile) -> str:
    """The search's engine (proposals + early stopping) as W&B runs, compare reports and the bench label it:
    e.g. ``tpe+asha``, ``wandb_bayes+wandb_hyperband``, ``random+none`` (no early stopping)."""
    return f"{search.searcher.algorithm}+{scheduler_name(search.budget)}"
