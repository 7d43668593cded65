"""One experiment folder, read for the report through the experiment contract (tune/experiment/):
its summary.json, search.yaml and every trial's result.json.

Works on a local folder and on s3:// / gs:// / file:// locations. Problems a user can cause (a folder that
is not an experiment, a search that never finished, an experiment of an earlier version, no trial with a
result) are :class:`ExperimentError`: one line saying what, where, and what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from train.metrics import REPORTED_AGAIN
from tune.distributions import Choice, Param
from tune.experiment import layout
from tune.experiment.records import (
    ERROR,
    TERMINATED,
    ExperimentError,
    Summary,
    TrialRecord,
    open_experiment,
    read_search,
)
from tune.experiment.storage import Experiment, is_file, join, read_text
from tune.space import Budget, SearchFile


@dataclass
class Trial:
    trial_id: str
    status: str
    """As summary.json has it: TERMINATED (finished, or stopped by ASHA), ERROR, or an interrupted search's own."""
    params: dict[str, Any]
    """Sampled parameters, by dotted config key."""
    epochs: int
    value: Optional[float]
    """The metric of its last reported epoch (what ASHA and the searcher judged it by)."""
    curve: dict[int, float] = field(default_factory=dict)
    """Epoch (1-based) -> metric, from result.json (the last report of an epoch wins after a retry)."""
    done_at: dict[int, float] = field(default_factory=dict)
    """Epoch -> when it finished (s; the trial's start + Tune's time_total_s), for completion order."""
    error: Optional[str] = None
    checkpoint: Optional[str] = None
    """Its last checkpoint, resolved under the experiment's current location."""
    started: Optional[float] = None
    """When it started (s, the clock of done_at); None without result.json rows."""

    def outcome(self, epochs: int) -> str:
        """complete / stopped by ASHA at epoch k / error / the status of an interrupted search."""
        if self.status == ERROR:
            return "error"
        if self.status == TERMINATED:
            return "complete" if self.epochs >= epochs else f"stopped at {self.epochs}"
        return self.status.lower()


@dataclass
class SearchResults:
    """What the report shows of one experiment."""

    folder: Experiment
    summary: Summary
    search: SearchFile
    """search.yaml as the search wrote it."""
    trials: list[Trial]

    @property
    def location(self) -> str:
        """Local path (absolute) or URI of the experiment folder."""
        return self.folder.uri

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def metric(self) -> str:
        return self.summary.metric

    @property
    def mode(self) -> str:
        return self.summary.mode

    @property
    def space(self) -> dict[str, Param]:
        return self.search.space

    @property
    def budget(self) -> Budget:
        return self.search.budget

    @property
    def epochs(self) -> int:
        """trial.epochs: what a trial ASHA never stopped trained."""
        return self.search.trial.epochs

    def scored(self) -> list[Trial]:
        """Trials with at least one reported metric, best first."""
        found = [t for t in self.trials if t.value is not None]
        return sorted(found, key=lambda t: t.value, reverse=self.mode == "max")

    @property
    def best(self) -> Trial:
        best_id = self.summary.best.trial_id if self.summary.best else None
        return next((t for t in self.trials if t.trial_id == best_id), self.scored()[0])

    def rungs(self) -> list[int]:
        """Epochs at which ASHA compared trials (grace_period * reduction_factor^k below trial.epochs)."""
        if not self.budget.early_stopping:
            return []
        # W&B's hyperband judges band b once a run has more than b rows: at epoch b + 1
        # (tune/schedulers/wandb_hyperband.py).
        shift = 1 if self.budget.scheduler == "wandb_hyperband" else 0
        rungs, rung = [], self.budget.grace_period
        while rung + shift < self.epochs:
            rungs.append(rung + shift)
            rung *= self.budget.reduction_factor
        return rungs

    def categorical(self) -> list[str]:
        """Searched parameters with a fixed set of values (model.name and model.pretrained first)."""
        keys = [key for key, param in self.space.items() if isinstance(param, Choice)]
        return sorted(keys, key=lambda key: (not key.startswith("model."), keys.index(key)))

    def describe(self) -> str:
        """e.g. 'tpe + ASHA' or 'random, no early stopping' (for plot legends)."""
        algorithm = self.search.searcher.algorithm
        return f"{algorithm} + {self.stopper}" if self.budget.early_stopping else f"{algorithm}, no early stopping"

    @property
    def stopper(self) -> str:
        """Who stopped trials early: ASHA, or W&B hyperband (budget.scheduler: wandb_hyperband)."""
        from tune.schedulers import stopper_name

        return stopper_name(self.budget)

    def child(self, *parts: str) -> str:
        return self.folder.child(*parts)


def load(location: str) -> SearchResults:
    """Read the experiment at ``location``; :class:`ExperimentError` when it cannot be reported on."""
    folder = open_experiment(location)
    summary = Summary.read(folder.uri)
    search = read_search(folder) if folder.has(layout.SEARCH_FILE) else None
    if search is None:
        raise ExperimentError(f"{folder.uri}: no {layout.SEARCH_FILE} beside {layout.SUMMARY_FILE}")
    trials = [_trial(folder, record, summary.metric) for record in summary.trials]
    results = SearchResults(folder, summary, search, trials)
    if not results.scored():
        errors = [t.error for t in trials if t.error]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise ExperimentError(f"{folder.uri}: no finished trial: none of its {len(trials)} trials reported "
                              f"{summary.metric}{hint}")
    return results


def _trial(folder: Experiment, record: TrialRecord, metric: str) -> Trial:
    trial_dir = folder.resolve(record.path) or folder.child(layout.trial_dirname(record.trial_id))
    trial = Trial(trial_id=record.trial_id, status=record.status, params=dict(record.params), epochs=record.epochs,
                  value=record.metrics.get(metric), error=record.error, checkpoint=folder.resolve(record.checkpoint))
    rows = result_rows(join(trial_dir, layout.RESULT_FILE), metric)
    if rows:
        # Tune's timestamp is whole seconds: pin the trial's start as tightly as its rows allow (as
        # bench/search_efficiency.py does), then each epoch finished at start + time_total_s.
        start = max(row["timestamp"] - row["time_total_s"] for row in rows)
        trial.started = start
        for row in rows:
            epoch = int(row.get("epoch") or row.get("training_iteration"))
            if row.get(REPORTED_AGAIN) and epoch in trial.curve:
                continue  # a resumed run repeating an epoch it had reported: it finished when first reported
            trial.curve[epoch] = float(row[metric])
            trial.done_at[epoch] = start + row["time_total_s"]
    elif trial.value is not None:  # no result.json (copied without trial folders): the summary's last epoch
        trial.curve[trial.epochs] = float(trial.value)
    return trial


def result_rows(location: str, metric: str) -> list[dict[str, Any]]:
    """The rows of a Tune result.json that carry ``metric`` (a cut-off last line is skipped)."""
    if not is_file(location):
        return []
    rows = []
    for line in read_text(location).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get(metric) is not None and row.get("time_total_s") is not None and row.get("timestamp") is not None:
            rows.append(row)
    return rows


def leaderboard(exp: SearchResults, top: int = 10) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of the ``top`` trials by their last metric: rank, trial, metric, epochs, outcome and
    every sampled parameter (raw values; see results/report/html.py for how they are printed)."""
    keys = list(exp.space) or sorted({key for t in exp.trials for key in t.params})
    columns = ["rank", "trial", exp.metric, "epochs", "status", *keys]
    rows = [[rank, t.trial_id, t.value, t.epochs, t.outcome(exp.epochs), *(t.params.get(k) for k in keys)]
            for rank, t in enumerate(exp.scored()[:top], start=1)]
    return columns, rows
