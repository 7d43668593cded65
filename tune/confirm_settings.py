"""The ``confirm:`` section of a search file: which finalists are trained again, and with which seeds.

A search's winner is the best of many noisy trials, so its validation score is biased upwards (the winner's
curse). The confirmation stage (tune/confirmation/) re-trains the ``top_k`` best distinct configurations from
scratch, once per seed, and ranks them by their mean; this is its schema (typed like tune/space.py).
"""

from __future__ import annotations

from typing import Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Confirm(BaseModel):
    """After the search: the ``top_k`` best distinct configurations (a multi-objective search: its Pareto front,
    up to ``top_k``) trained again from scratch for the full ``trial.epochs``, no early stopping, once per seed."""

    model_config = _STRICT
    top_k: int = Field(0, ge=0)
    """Finalists to confirm; 0 turns the stage off."""
    seeds: Union[list[int], int] = 3
    """Training seeds (``trial.seed``) of the confirmation runs: a list, or a count n meaning trial.seed + 1, ...,
    trial.seed + n. Never the search's own training seed, so every run is a fresh draw; the data split
    (``trial.data.split_seed``) and the data set stay as they were, so every score is on the same validation
    images. At least 2 seeds (one gives no spread)."""

    @model_validator(mode="after")
    def _enough_seeds(self):
        count = len(self.seeds) if isinstance(self.seeds, list) else self.seeds
        if self.top_k > 0 and count < 2:
            raise ValueError(f"seeds: {count} seed(s) with top_k {self.top_k}: a confirmation needs 2 or "
                             "more seeds (one gives no spread; top_k: 0 turns it off)")
        if isinstance(self.seeds, list) and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: {self.seeds} repeats a seed; give distinct ones")
        return self

    def seed_list(self, search_seed: int) -> list[int]:
        """The confirmation runs' training seeds, given the search's ``trial.seed``."""
        if isinstance(self.seeds, list):
            return list(self.seeds)
        return [search_seed + 1 + i for i in range(self.seeds)]

    def check_against(self, search_seed: int) -> None:
        """ValueError when a seed given is the search's own training seed."""
        if self.top_k > 0 and search_seed in self.seed_list(search_seed):
            raise ValueError(f"confirm.seeds: {search_seed} is the search's own training seed (trial.seed); a "
                             "confirmation run with it repeats a search trial: give other seeds, or a count")
