"""A multi-objective search's part of the report: accuracy against measured latency with the Pareto front
marked, and a table of the front's trials (summary.json ``front``: Optuna's ``study.best_trials``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from results.report.data import SearchResults
from results.report.figures import pyplot, save
from results.report.plots import Figure, Plot, Skipped
from tune.objectives import LATENCY_METRIC


def is_pareto(exp: SearchResults) -> bool:
    """A multi-objective search with a measured latency objective."""
    return bool(exp.summary.objectives) and any(o.metric == LATENCY_METRIC for o in exp.summary.objectives)


def _latency(exp: SearchResults) -> dict[str, Optional[float]]:
    return {t.trial_id: t.metrics.get(LATENCY_METRIC) for t in exp.summary.trials}


def front_plot(exp: SearchResults, out: Path) -> Figure:
    title = f"{exp.metric} against measured latency (Pareto front)"
    latency, front = _latency(exp), exp.summary.front or []
    points = [(t, latency[t.trial_id]) for t in exp.trials if t.value is not None and latency.get(t.trial_id)]
    if not points:
        return Skipped(title, f"no trial reported both {exp.metric} and {LATENCY_METRIC}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=100, layout="constrained")
    complete = [(t, x) for t, x in points if t.outcome(exp.epochs) == "complete" and t.trial_id not in front]
    stopped = [(t, x) for t, x in points if t.outcome(exp.epochs) != "complete"]
    on_front = sorted(((t, x) for t, x in points if t.trial_id in front), key=lambda p: p[1])
    ax.scatter([x for _, x in complete], [t.value for t, _ in complete], s=36, color="tab:blue",
               label=f"finished ({len(complete)})", zorder=2)
    ax.scatter([x for _, x in stopped], [t.value for t, _ in stopped], s=36, marker="x", color="tab:gray",
               label=f"stopped by {exp.stopper} ({len(stopped)}; {exp.metric} where it stopped)", zorder=2)
    if on_front:
        xs, ys = [x for _, x in on_front], [t.value for t, _ in on_front]
        ax.step(xs, ys, where="post", color="crimson", lw=1.2, alpha=0.6, zorder=1)
        ax.scatter(xs, ys, s=80, marker="*", color="crimson", label=f"Pareto front ({len(on_front)})", zorder=3)
        for t, x in on_front:
            ax.annotate(t.trial_id, (x, t.value), textcoords="offset points", xytext=(4, -10), fontsize=7)
    settings = exp.summary.latency or {}
    ax.set_xlabel(f"{LATENCY_METRIC} (median, batch {settings.get('batch_size', '?')}, "
                  f"{settings.get('threads', '?')} thread(s), {settings.get('execution_provider', '?')}; "
                  f"onnxruntime {settings.get('onnxruntime', '?')})")
    ax.set_ylabel(f"{exp.metric} (last reported epoch)")
    ax.legend(fontsize=8, loc="lower right" if exp.mode == "max" else "upper right")
    ax.set_title(title, fontsize=11)
    save(fig, out / "pareto.png")
    caption = (f"Each trial's {exp.metric} against the latency of its architecture, exported to ONNX and timed in "
               f"onnxruntime before the search. Stars: the front (finished trials no other finished trial beats on "
               f"both); crosses: trials {exp.stopper} stopped early, never on the front (their {exp.metric} is from "
               f"the epoch "
               f"they stopped at).")
    return Plot("pareto.png", "Accuracy against latency", caption)


def front_table(exp: SearchResults) -> tuple[str, list[str], list[list[Any]]]:
    """(title, columns, rows) of the front's trials, best first on the first objective."""
    latency, by_id = _latency(exp), {t.trial_id: t for t in exp.trials}
    keys = list(exp.space)
    columns = ["trial", exp.metric, LATENCY_METRIC, "epochs", *keys]
    rows = [[i, by_id[i].value, latency.get(i), by_id[i].epochs, *(by_id[i].params.get(k) for k in keys)]
            for i in exp.summary.front or [] if i in by_id]
    return f"Pareto front ({len(rows)} trials)", columns, rows
