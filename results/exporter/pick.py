"""``results/export.py EXP --pick best|fastest|balanced [--max-latency-ms X] [--min-val-acc Y]``: which trial of
a search to ship.

A multi-objective search chooses among its Pareto front (summary.json ``front``), constraints first:

* best: the best first objective (accuracy; ties: the lower latency);
* fastest: the lowest latency_ms (ties: the better accuracy);
* balanced: the knee of the front: objectives min-max normalised over the front points that meet the
  constraints, the point nearest the utopia point (best on every objective at once).

A single-objective search has one candidate, its best trial: ``--pick best`` (with an accuracy constraint it
meets) exports it as without --pick; fastest, balanced or a latency constraint cannot be answered there.
Nothing that meets the constraints is one line naming the closest point (the smallest relative shortfall
summed over the constraints), and nothing is written.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from results.exporter.source import ExportError

LATENCY = "latency_ms"
PICKS = ("best", "fastest", "balanced")


def constraints(max_latency_ms: Optional[float], min_val_acc: Optional[float]) -> dict[str, tuple[str, float]]:
    """metric -> (max|min, bound) of the constraints given."""
    out: dict[str, tuple[str, float]] = {}
    if max_latency_ms is not None:
        out[LATENCY] = ("max", max_latency_ms)
    if min_val_acc is not None:
        out["val_acc"] = ("min", min_val_acc)
    return out


def _flags(limits: dict[str, tuple[str, float]]) -> str:
    return " ".join(f"--{kind}-{metric.replace('_', '-')} {bound:g}" for metric, (kind, bound) in limits.items())


def _shortfall(trial: dict[str, Any], limits: dict[str, tuple[str, float]]) -> float:
    """0 when ``trial`` meets every constraint, else its relative shortfall summed over them."""
    total = 0.0
    for metric, (kind, bound) in limits.items():
        value = trial["metrics"].get(metric)
        if value is None:
            return math.inf
        gap = value - bound if kind == "max" else bound - value
        total += max(0.0, gap) / max(abs(bound), 1e-12)
    return total


def _describe(trial: dict[str, Any], metrics: list[str]) -> str:
    shown = ", ".join(f"{m} {trial['metrics'].get(m):.4g}" for m in metrics if trial["metrics"].get(m) is not None)
    return f"trial {trial['trial_id']} ({shown})"


def pick(summary: dict[str, Any], how: str, limits: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """The summary.json trial entry to export; ExportError (one line) when the search cannot answer."""
    objectives = summary.get("objectives")
    metric, mode = summary["metric"], summary["mode"]
    if not objectives:
        if how != "best" or LATENCY in limits:
            asked = f"--pick {how}" if how != "best" else "--max-latency-ms"
            raise ExportError(f"{asked} needs a multi-objective search with a {LATENCY} objective; "
                              f"{summary['experiment']} optimised {metric} alone (use --pick best, or search "
                              f"with objectives: [{{metric: {metric}, mode: {mode}}}, "
                              f"{{metric: {LATENCY}, mode: min}}])")
        candidates = [summary["best"]] if summary.get("best") else []
        names = [metric]
    else:
        names = [o["metric"] for o in objectives]
        if how != "best" and LATENCY not in names:
            raise ExportError(f"--pick {how} needs a {LATENCY} objective; {summary['experiment']} has "
                              f"{', '.join(names)}")
        by_id = {t["trial_id"]: t for t in summary["trials"]}
        candidates = [by_id[i] for i in summary.get("front") or [] if i in by_id]
    for name in limits:
        if not objectives and name != metric:
            raise ExportError(f"--min-{name.replace('_', '-')}: {summary['experiment']} optimised {metric} alone")
    if not candidates:
        raise ExportError(f"{summary['experiment']}: no finished trial to pick from (the front is empty)")
    fits = [t for t in candidates if _shortfall(t, limits) == 0.0]
    if not fits:
        closest = min(candidates, key=lambda t: _shortfall(t, limits))
        where = "on the front" if objectives else "(its best trial)"
        raise ExportError(f"nothing {where} of {summary['experiment']} satisfies {_flags(limits)}; the closest is "
                          f"{_describe(closest, names)}")
    if not objectives:
        return fits[0]
    first = next(o for o in objectives if o["metric"] != LATENCY)
    sign = -1.0 if first["mode"] == "max" else 1.0
    if how == "best":
        return min(fits, key=lambda t: (sign * t["metrics"][first["metric"]], t["metrics"].get(LATENCY, 0.0)))
    if how == "fastest":
        return min(fits, key=lambda t: (t["metrics"][LATENCY], sign * t["metrics"][first["metric"]]))
    return _knee(fits, objectives)


def _knee(trials: list[dict[str, Any]], objectives: list[dict[str, Any]]) -> dict[str, Any]:
    """The point nearest the utopia point after min-max normalising each objective (0 best, 1 worst)."""
    def normalised(trial: dict[str, Any]) -> float:
        total = 0.0
        for objective in objectives:
            values = [t["metrics"][objective["metric"]] for t in trials]
            low, high = min(values), max(values)
            value = trial["metrics"][objective["metric"]]
            share = 0.0 if high == low else (value - low) / (high - low)
            total += (1.0 - share if objective["mode"] == "max" else share) ** 2
        return total

    return min(trials, key=normalised)


def picked(source, path, how: str, limits: dict[str, tuple[str, float]]):
    """``source`` (results/exporter/source.py, an experiment's best trial) turned to the trial ``how`` picks."""
    import dataclasses

    from results.checkpoints import has_checkpoint

    if has_checkpoint(str(path.expanduser().absolute())) or source.summary is None or source.experiment is None:
        raise ExportError(f"{path}: --pick and its constraints choose among a search's trials: give the experiment "
                          f"folder, not a checkpoint")
    trial = pick(source.summary, how, limits)
    checkpoint = source.experiment / trial["checkpoint"] if trial.get("checkpoint") else None
    if checkpoint is None or not has_checkpoint(str(checkpoint)):
        raise ExportError(f"{path}: trial {trial['trial_id']}'s checkpoint {checkpoint} is missing")
    return dataclasses.replace(source, checkpoint=checkpoint, trial=trial)
