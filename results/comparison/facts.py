"""What the comparison shows of each experiment, read through the experiment contract (results.report.data.load:
summary.json, search.yaml, every trial's result.json): its engine, trials, epochs, wall time, best metric and the
best trial's test accuracy, and its best-so-far curves against epochs trained and against elapsed time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from results.report.data import SearchResults
from tune.engine_label import engine_name
from tune.experiment.records import ExperimentError


@dataclass
class Entry:
    exp: SearchResults
    engine: str
    """tune.engine_label.engine_name of its search.yaml, e.g. tpe+asha, wandb_bayes+wandb_hyperband."""
    test_accuracy: Optional[float]
    """The best trial's accuracy on the test split (evaluation-test.json beside its checkpoint); None: not evaluated."""
    epochs: list[int]
    """Trial-epochs trained so far after each epoch finished (1, 2, ...), in completion order over all trials."""
    seconds: list[float]
    """When each of those epochs finished, seconds after the search's first trial started."""
    best: list[float]
    """The best metric so far at each of those epochs."""

    @property
    def name(self) -> str:
        return self.exp.name

    @property
    def label(self) -> str:
        return f"{self.exp.name} ({self.engine})"

    @property
    def best_value(self) -> float:
        return self.exp.best.value


def entry(exp: SearchResults, test_accuracy: Optional[float]) -> Entry:
    done = sorted((t.done_at[e], t.curve[e]) for t in exp.trials for e in t.curve if e in t.done_at)
    if not done:
        raise ExperimentError(f"{exp.location}: no trial has result.json rows to compare (trial folders missing?)")
    start = min(t.started for t in exp.trials if t.started is not None)
    pick = max if exp.mode == "max" else min
    epochs, seconds, best = [], [], []
    for count, (at, value) in enumerate(done, start=1):
        epochs.append(count)
        seconds.append(at - start)
        best.append(value if not best else pick(best[-1], value))
    return Entry(exp, engine_name(exp.search), test_accuracy, epochs, seconds, best)


def reach(entry: Entry, target: float, mode: str) -> Optional[tuple[int, float]]:
    """(epochs trained, seconds) when ``entry`` first matched ``target`` (>= for max, <= for min); None: never."""
    for epochs, seconds, best in zip(entry.epochs, entry.seconds, entry.best):
        if (best >= target) if mode == "max" else (best <= target):
            return epochs, seconds
    return None


def check_comparable(entries: list[SearchResults]) -> None:
    """Same data (fingerprint), metric and mode, or one ExperimentError line naming the first that differs."""
    first = entries[0]
    for other in entries[1:]:
        if other.summary.data_fingerprint != first.summary.data_fingerprint:
            raise ExperimentError(f"{other.location}: searched other data than {first.location} (fingerprint "
                                  f"{other.summary.data_fingerprint[:12]} against "
                                  f"{first.summary.data_fingerprint[:12]}); "
                                  "only searches of the same data compare")
        if (other.metric, other.mode) != (first.metric, first.mode):
            raise ExperimentError(f"{other.location}: optimised {other.metric} ({other.mode}), {first.location} "
                                  f"{first.metric} ({first.mode}); only searches for the same metric compare")
