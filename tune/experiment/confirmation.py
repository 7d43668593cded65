"""summary.json's ``confirmation``: the finalists of a search trained again once per seed (tune/confirmation/), their
seeds' scores, means, spreads and intervals, the confirmed winner and the run that ships. Read and written with the
summary (records.py); the experiment's ``confirm/`` folder holds the runs (layout.py)."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from train.config import TrialConfig

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)
Scalar = Union[bool, int, float, str, None]
Number = Union[int, float, None]


class Interval(BaseModel):
    """A score over the seeds: each run's, their mean, sample standard deviation and 95 % Student-t interval."""

    model_config = _STRICT
    scores: list[float]
    """One per finished run, in seed order."""
    mean: float
    std: Optional[float] = None
    """Sample standard deviation (n - 1); null with one score."""
    low: Optional[float] = None
    """mean - t(0.975, n-1) * std / sqrt(n); null with one score."""
    high: Optional[float] = None


class ConfirmRun(BaseModel):
    """One confirmation run: a finalist's configuration trained from scratch with one seed."""

    model_config = _STRICT
    trial_id: str
    """Tune's trial id in the confirmation run (``confirm/trial_<id>``)."""
    seed: int
    """Its training seed (trial.seed); the data split is the search's."""
    status: Literal["TERMINATED", "ERROR", "UNFINISHED", "NOT_STARTED"]
    """As a search trial's (records.TrialRecord.status)."""
    epochs: int
    metrics: dict[str, Number] = {}
    """Its last report (the same keys as a search trial's)."""
    test_acc: Optional[float] = None
    """Accuracy of its last checkpoint on the data set's test split; null where the data set has none."""
    path: Optional[str] = None
    """Its folder, relative to the experiment folder."""
    checkpoint: Optional[str] = None
    """Its last checkpoint, relative to the experiment folder."""
    error: Optional[str] = None


class Finalist(BaseModel):
    """A configuration the search ranked among its best, confirmed over the seeds."""

    model_config = _STRICT
    trial_id: str
    """The search trial it came from."""
    params: dict[str, Scalar] = {}
    config: TrialConfig
    """The search trial's config (the runs change only trial.seed)."""
    search_score: float
    """The metric the search trial reported (the number the search ranked it by)."""
    runs: list[ConfirmRun] = []
    val: Optional[Interval] = None
    """The metric over the finished runs; null before any finished."""
    test: Optional[Interval] = None
    """Test accuracy over the finished runs; null without a test split."""
    optimism: Optional[float] = None
    """search_score - val.mean (for a metric to minimise: val.mean - search_score): how much the search's number
    flattered this configuration."""


class Confirmation(BaseModel):
    """The confirmation stage's outcome."""

    model_config = _STRICT
    metric: str
    mode: Literal["max", "min"]
    top_k: int
    seeds: list[int]
    status: Literal["finished", "unfinished"]
    """unfinished: not every run has finished (the stage was stopped, or is running); --resume continues it, keeping
    the finished runs. Export then refuses the default (the confirmed winner is not known yet)."""
    finalists: list[Finalist]
    """In the search's order (the best search score first; a multi-objective search: its front's order)."""
    ranking: list[str] = []
    """Finalist trial ids, best mean first."""
    winner: Optional[str] = None
    """The confirmed winner: the finalist with the best mean (null until every run finished)."""
    runner_up: Optional[str] = None
    distinguishable: Optional[bool] = None
    """Whether the winner's interval and the runner-up's do not overlap; false: not distinguishable at this many
    seeds (either could be the better configuration)."""
    verdict: Optional[str] = None
    """The verdict as one line (what the console prints)."""
    shipped: Optional[ConfirmRun] = None
    """The winner's run that export.py ships by default and best_config.yaml re-trains: its median seed (of two
    middle ones the worse), never the luckiest."""
    raw_winner_confirmed: Optional[bool] = None
    """Whether the search's own best trial is the confirmed winner."""
    wall_s: float = 0.0
    """Seconds the stage's trials ran, over every session."""
    total_epochs: int = 0
    """Epochs the stage trained."""

    def finalist(self, trial_id: Optional[str]) -> Optional[Finalist]:
        return next((f for f in self.finalists if f.trial_id == trial_id), None)

    def shipped_config(self) -> Optional[tuple[str, TrialConfig]]:
        """(best_config.yaml's header lines, the config) of the confirmed winner's shipped run; None before one."""
        winner = self.finalist(self.winner)
        if winner is None or self.shipped is None or winner.val is None:
            return None
        spread = f" ± {winner.val.high - winner.val.mean:.4f}" if winner.val.high is not None else ""
        header = (f"# Confirmed winner: trial {winner.trial_id}, {self.metric} {winner.val.mean:.4f}{spread} (95 % "
                  f"interval) over {len(winner.val.scores)} seeds; its median seed {self.shipped.seed} is the one "
                  f"that ships\n# {self.verdict}\n")
        return header, dataclasses.replace(winner.config, seed=self.shipped.seed)
