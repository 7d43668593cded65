"""One experiment folder, read for the report: summary.json, search.yaml and every trial's result.json.

Works on a local folder and on s3:// / gs:// / file:// locations (results/locations.py). Problems a user
can cause (a folder that is not an experiment, a search that never finished, no trial with a result) are
:class:`ExperimentError`: one line saying what, where, and what to do.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Optional

import pydantic
import yaml

from results import locations
from tune.space import Budget, Choice, Param
from tune.storage import normalise

SUMMARY_FILE = "summary.json"
SEARCH_FILE = "search.yaml"


class ExperimentError(ValueError):
    """An experiment that cannot be reported on; the message is one line."""


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

    def outcome(self, max_epochs: int) -> str:
        """complete / stopped by ASHA at epoch k / error / the status of an interrupted search."""
        if self.status == "ERROR":
            return "error"
        if self.status == "TERMINATED":
            return "complete" if self.epochs >= max_epochs else f"stopped at {self.epochs}"
        return self.status.lower()


@dataclass
class Experiment:
    location: str
    """Local path (absolute) or URI of the experiment folder."""
    name: str
    summary: dict[str, Any]
    search: dict[str, Any]
    """search.yaml as written by the search (raw: read tolerantly, the schema may have grown since)."""
    space: dict[str, Any]
    """Parsed space: dotted key -> tune.space Param."""
    budget: Budget
    trials: list[Trial]
    metric: str
    mode: str

    @property
    def max_epochs(self) -> int:
        return int(((self.search.get("trial") or {}).get("epochs")) or self.summary["max_epochs"])

    def scored(self) -> list[Trial]:
        """Trials with at least one reported metric, best first."""
        found = [t for t in self.trials if t.value is not None]
        return sorted(found, key=lambda t: t.value, reverse=self.mode == "max")

    @property
    def best(self) -> Trial:
        best_id = (self.summary.get("best") or {}).get("trial_id")
        return next((t for t in self.trials if t.trial_id == best_id), self.scored()[0])

    def rungs(self) -> list[int]:
        """Epochs at which ASHA compared trials (grace_period * reduction_factor^k below max_epochs)."""
        if not self.budget.early_stopping:
            return []
        rungs, rung = [], self.budget.grace_period
        while rung < self.max_epochs:
            rungs.append(rung)
            rung *= self.budget.reduction_factor
        return rungs

    def categorical(self) -> list[str]:
        """Searched parameters with a fixed set of values (model.name and model.pretrained first)."""
        keys = [key for key, param in self.space.items() if isinstance(param, Choice)]
        return sorted(keys, key=lambda key: (not key.startswith("model."), keys.index(key)))

    def describe(self) -> str:
        """e.g. 'tpe + ASHA' or 'random, no early stopping' (for plot legends)."""
        algorithm = (self.search.get("searcher") or {}).get("algorithm", "tpe")
        return f"{algorithm} + ASHA" if self.budget.early_stopping else f"{algorithm}, no early stopping"

    def child(self, *parts: str) -> str:
        return locations.join(self.location, *parts)


def load(location: str) -> Experiment:
    """Read the experiment at ``location``; :class:`ExperimentError` when it cannot be reported on."""
    location = normalise(location)
    if not locations.is_dir(location):
        raise ExperimentError(f"{location}: no such folder")
    summary_file, search_file = (locations.join(location, name) for name in (SUMMARY_FILE, SEARCH_FILE))
    has_summary, has_search = locations.is_file(summary_file), locations.is_file(search_file)
    if not has_summary:
        if has_search:
            raise ExperimentError(
                f"{location}: no {SUMMARY_FILE}: the search never finished; continue it with "
                f"python tune/run_search.py --config {search_file} --resume {location}")
        raise ExperimentError(f"{location}: not an experiment folder (no {SUMMARY_FILE} or {SEARCH_FILE} inside; "
                              "give the folder run_search.py printed, e.g. runs/smoke-<time>)")
    summary = _read_json(summary_file)
    search = yaml.safe_load(locations.read_text(search_file)) if has_search else {}
    metric, mode = summary.get("metric") or search.get("metric", "val_acc"), summary.get("mode", "max")
    try:
        space = pydantic.TypeAdapter(dict[str, Param]).validate_python(search.get("space") or {})
        budget = Budget(**{k: v for k, v in (search.get("budget") or {}).items() if k in Budget.model_fields})
    except pydantic.ValidationError as error:
        raise ExperimentError(f"{search_file}: unreadable search file ({str(error).splitlines()[0]})") from None
    trials = [_trial(location, entry, metric) for entry in summary.get("trials") or []]
    experiment = Experiment(location, posixpath.basename(location.rstrip("/")), summary, search or {}, space,
                            budget, trials, metric, mode)
    if not experiment.scored():
        errors = [t.error for t in trials if t.error]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise ExperimentError(f"{location}: no finished trial: none of its {len(trials)} trials reported "
                              f"{metric}{hint}")
    return experiment


def _read_json(location: str) -> dict[str, Any]:
    try:
        return json.loads(locations.read_text(location))
    except json.JSONDecodeError as error:
        raise ExperimentError(f"{location}: not valid JSON ({error.msg} at line {error.lineno}); "
                              "cut off while written?") from None


def _trial(experiment: str, entry: dict[str, Any], metric: str) -> Trial:
    trial_dir = (locations.resolve(experiment, entry.get("path"))
                 or locations.join(experiment, f"trial_{entry['trial_id']}"))
    trial = Trial(trial_id=entry["trial_id"], status=entry.get("status", "TERMINATED"),
                  params=entry.get("params") or {}, epochs=int(entry.get("epochs") or 0),
                  value=(entry.get("metrics") or {}).get(metric), error=entry.get("error"),
                  checkpoint=locations.resolve(experiment, entry.get("checkpoint")))
    rows = result_rows(locations.join(trial_dir, "result.json"), metric)
    if rows:
        # Tune's timestamp is whole seconds: pin the trial's start as tightly as its rows allow (as
        # bench/search_efficiency.py does), then each epoch finished at start + time_total_s.
        start = max(row["timestamp"] - row["time_total_s"] for row in rows)
        for row in rows:
            epoch = int(row.get("epoch") or row.get("training_iteration"))
            trial.curve[epoch] = float(row[metric])
            trial.done_at[epoch] = start + row["time_total_s"]
    elif trial.value is not None:  # no result.json (copied without trial folders): the summary's last epoch
        trial.curve[trial.epochs] = float(trial.value)
    return trial


def result_rows(location: str, metric: str) -> list[dict[str, Any]]:
    """The rows of a Tune result.json that carry ``metric`` (a cut-off last line is skipped)."""
    if not locations.is_file(location):
        return []
    rows = []
    for line in locations.read_text(location).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get(metric) is not None and row.get("time_total_s") is not None and row.get("timestamp") is not None:
            rows.append(row)
    return rows


def leaderboard(exp: Experiment, top: int = 10) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of the ``top`` trials by their last metric: rank, trial, metric, epochs, outcome and
    every sampled parameter (raw values; see results/report_html.py for how they are printed)."""
    keys = list(exp.space) or sorted({key for t in exp.trials for key in t.params})
    columns = ["rank", "trial", exp.metric, "epochs", "status", *keys]
    rows = [[rank, t.trial_id, t.value, t.epochs, t.outcome(exp.max_epochs), *(t.params.get(k) for k in keys)]
            for rank, t in enumerate(exp.scored()[:top], start=1)]
    return columns, rows
