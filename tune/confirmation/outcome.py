"""From the confirmation runs to the verdict: each finalist's interval and optimism, the confirmed winner (best mean),
whether the runner-up can be told apart, and the run that ships (the winner's median seed). No Ray."""

from __future__ import annotations

from typing import Optional

from tune.confirmation.stats import Spread, median_index, overlaps, ranked, spread
from tune.experiment.confirmation import Confirmation, ConfirmRun, Finalist, Interval
from tune.experiment.records import TERMINATED


def _interval(scores: list[Optional[float]]) -> Optional[Interval]:
    s = spread([v for v in scores if v is not None])
    if s is None:
        return None
    return Interval(scores=[float(v) for v in scores if v is not None], mean=s.mean, std=s.std, low=s.low, high=s.high)


def _as_spread(interval: Interval) -> Spread:
    return Spread(len(interval.scores), interval.mean, interval.std, interval.low, interval.high)


def _finished(finalist: Finalist, metric: str) -> list[ConfirmRun]:
    return [run for run in finalist.runs if run.status == TERMINATED and run.metrics.get(metric) is not None]


def fill_finalist(finalist: Finalist, metric: str, mode: str) -> Finalist:
    """``finalist`` (its ``runs`` set) with its intervals and optimism."""
    runs = sorted(_finished(finalist, metric), key=lambda run: run.seed)
    val = _interval([run.metrics[metric] for run in runs])
    tests = [run.test_acc for run in runs if run.test_acc is not None]
    test = _interval(tests) if len(tests) == len(runs) else None  # all runs, or none: one kind of number
    optimism = None
    if val is not None:
        optimism = finalist.search_score - val.mean if mode == "max" else val.mean - finalist.search_score
    return finalist.model_copy(update={"val": val, "test": test, "optimism": optimism})


def plus_minus(interval: Optional[Interval]) -> str:
    """"0.9120 ± 0.0100" (the interval's half-width), or the mean alone without one; "-" without runs."""
    if interval is None:
        return "-"
    if interval.high is None:
        return f"{interval.mean:.4f}"
    return f"{interval.mean:.4f} ± {interval.high - interval.mean:.4f}"


def decide(confirmation: Confirmation, raw_best: Optional[str], complete: bool) -> Confirmation:
    """The confirmation with its ranking; the winner, verdict and shipped run once every run finished."""
    metric, mode = confirmation.metric, confirmation.mode
    finalists = [fill_finalist(f, metric, mode) for f in confirmation.finalists]
    means = {f.trial_id: f.val.mean for f in finalists if f.val is not None}
    order = ranked(means, mode)
    update = {"finalists": finalists, "ranking": order,
              "total_epochs": sum(run.epochs for f in finalists for run in f.runs)}
    if not complete or not order:
        return confirmation.model_copy(update=update)
    by_id = {f.trial_id: f for f in finalists}
    winner = by_id[order[0]]
    seeds = len(confirmation.seeds)
    line = (f"confirmed winner: trial {winner.trial_id}, {metric} {plus_minus(winner.val)} "
            f"(95 % interval, {seeds} seeds)")
    runner_up = by_id[order[1]] if len(order) > 1 else None
    distinguishable = None
    if runner_up is not None:
        distinguishable = not overlaps(_as_spread(winner.val), _as_spread(runner_up.val))
        how = "distinguishable" if distinguishable else "not distinguishable"
        line += f"; {how} at {seeds} seeds from the runner-up, trial {runner_up.trial_id} ({plus_minus(runner_up.val)})"
    if raw_best is not None and raw_best != winner.trial_id:
        line += f"; the search's own best was trial {raw_best}"
    runs = sorted(_finished(winner, metric), key=lambda run: run.seed)
    shipped = runs[median_index([run.metrics[metric] for run in runs], mode)]
    return confirmation.model_copy(update={
        **update, "winner": winner.trial_id, "runner_up": runner_up.trial_id if runner_up else None,
        "distinguishable": distinguishable, "verdict": line, "shipped": shipped,
        "raw_winner_confirmed": raw_best == winner.trial_id if raw_best is not None else None})
