"""The report's plots, one PNG each (matplotlib, Agg). Optuna's own matplotlib visualisations draw the
importance, parallel-coordinate and slice plots; the rest need what Optuna does not know (ASHA's rungs,
completion order across trials, a baseline search, the test-set confusion matrix)."""

from __future__ import annotations

import random
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import matplotlib
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from results.report.confusion import plot_confusion
from results.report.data import SearchResults
from results.report.figures import pyplot, save
from results.report.study import StudyView
from tune.distributions import LogUniform


@dataclass
class Plot:
    file: str
    """PNG file name in the report folder."""
    title: str
    caption: str


@dataclass
class Skipped:
    title: str
    reason: str


Figure = Union[Plot, Skipped]


def _wrap(title: str, fig) -> str:
    """``title`` broken into lines that fit the figure (about 12 characters of 10 pt text per inch)."""
    return textwrap.fill(title, max(30, int(fig.get_figwidth() * 12)))


def _pruned_note(view: StudyView, exp: SearchResults) -> str:
    return (f"{view.complete} finished + {view.pruned} {exp.stopper}-stopped trials; stopped ones count with their "
            f"last {exp.metric} (at the epoch they stopped), as Optuna's evaluators read finished trials only")


def learning_curves(exp: SearchResults, out: Path) -> Plot:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100, layout="constrained")
    best = exp.best.trial_id
    for trial in sorted(exp.trials, key=lambda t: t.trial_id == best):  # the best one drawn last, on top
        if not trial.curve:
            continue
        epochs = sorted(trial.curve)
        values = [trial.curve[e] for e in epochs]
        outcome = trial.outcome(exp.epochs)
        if trial.trial_id == best:
            ax.plot(epochs, values, "-o", color="crimson", lw=2.5, ms=4, zorder=5)
        elif outcome == "complete":
            ax.plot(epochs, values, "-", color="tab:blue", lw=1.2, alpha=0.8)
        else:
            ax.plot(epochs, values, "-", color="grey", lw=1.0, alpha=0.6)
            ax.plot(epochs[-1:], values[-1:], "x", color="black", ms=7, mew=1.5)
    for rung in exp.rungs():
        ax.axvline(rung, color="darkorange", ls=":", lw=1.5)
    handles = [Line2D([], [], color="crimson", lw=2.5, marker="o", label=f"best trial {best}"),
               Line2D([], [], color="tab:blue", label="ran all trial.epochs"),
               Line2D([], [], color="grey", marker="x", mec="black", label=f"stopped by {exp.stopper} (x)")]
    if exp.rungs():
        handles.append(Line2D([], [], color="darkorange", ls=":", label=f"{exp.stopper} rung"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(exp.metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    rungs = ", ".join(map(str, exp.rungs())) or "none (no early stopping)"
    ax.set_title(f"{exp.metric} per epoch, {len(exp.trials)} trials; {exp.stopper} rungs at epoch {rungs}", fontsize=11)
    save(fig, out / "learning_curves.png")
    return Plot("learning_curves.png", "Learning curves",
                f"Every trial's {exp.metric} per epoch. {exp.stopper} compares trials at its rungs (dotted) and stops "
                "the weaker ones there (x).")


def best_so_far(exp: SearchResults) -> tuple[list[int], list[float]]:
    """(epochs trained so far, best metric so far) after each trial-epoch, in completion order."""
    done = sorted((t.done_at[e], t.curve[e]) for t in exp.trials for e in t.curve if e in t.done_at)
    pick = max if exp.mode == "max" else min
    counts, bests = [], []
    for count, (_, value) in enumerate(done, start=1):
        counts.append(count)
        bests.append(value if not bests else pick(bests[-1], value))
    return counts, bests


def efficiency(exp: SearchResults, baselines: list[SearchResults], out: Path) -> Plot:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100, layout="constrained")
    colours = ["tab:gray", "tab:green", "tab:purple", "tab:brown"]
    for other, colour in zip(baselines, colours):
        counts, bests = best_so_far(other)
        ax.step(counts, bests, where="post", color=colour, lw=1.8, label=f"{other.name} ({other.describe()})")
    counts, bests = best_so_far(exp)
    ax.step(counts, bests, where="post", color="crimson", lw=2.2, label=f"{exp.name} ({exp.describe()})")
    ax.set_xlabel("epochs trained, all trials together (in the order they finished)")
    ax.set_ylabel(f"best {exp.metric} so far")
    ax.legend(loc="lower right" if exp.mode == "max" else "upper right", fontsize=8)
    ax.set_title(f"Search efficiency: best {exp.metric} vs epochs spent", fontsize=11)
    save(fig, out / "efficiency.png")
    full = len(exp.trials) * exp.epochs
    caption = (f"Best {exp.metric} found after each trial-epoch. This search trained {counts[-1] if counts else 0} "
               f"epochs, where {len(exp.trials)} trials run to trial.epochs would have trained {full}.")
    if baselines:
        caption += " Compared with: " + "; ".join(f"{o.name} ({o.describe()}, {len(o.trials)} trials)"
                                                 for o in baselines) + "."
    else:
        caption += (" No baseline was given: pass another experiment with --baseline (e.g. the same space with "
                    "--set searcher.algorithm=random budget.early_stopping=false) to compare.")
    return Plot("efficiency.png", "Search efficiency", caption)


def _optuna_plot(draw, out: Path, file: str, title: str, size: tuple[float, float]) -> None:
    """Run an optuna.visualization.matplotlib function without its global style change leaking out."""
    plt = pyplot()
    with matplotlib.rc_context({"figure.figsize": size, "figure.dpi": 100}), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning on every matplotlib visualisation
        result = draw()
        fig = (result.flat[0] if hasattr(result, "flat") else result).figure
        fig.suptitle(_wrap(title, fig), fontsize=10)
        fig.set_layout_engine("tight")
        save(fig, out / file)
    plt.close("all")


def _too_few(view: StudyView) -> Optional[str]:
    trials = view.study.get_trials(deepcopy=False)
    if len(trials) < 2:
        return f"needs at least 2 finished or stopped trials, the study has {len(trials)}"
    if not any(trial.params for trial in trials):
        return "no searched parameter"
    return None


def importance(view: StudyView, exp: SearchResults, out: Path) -> Figure:
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_param_importances

    title = "Parameter importance (fANOVA)"
    reason = _too_few(view)
    if reason:
        return Skipped(title, reason)
    trials = view.study.get_trials(deepcopy=False)
    everywhere = set.intersection(*(set(t.params) for t in trials))
    left_out = sorted(set().union(*(t.params for t in trials)) - everywhere)
    if not everywhere:
        return Skipped(title, "no parameter was sampled in every trial (fANOVA needs one)")
    # fANOVA divides by the variance: with none (in the metric, or in every parameter) it has nothing to split.
    if len({t.value for t in trials}) < 2:
        return Skipped(title, f"every trial has the same {exp.metric}: no variance to attribute")
    if all(len({repr(t.params[key]) for t in trials}) < 2 for key in everywhere):
        return Skipped(title, "no parameter took two different values")
    _optuna_plot(lambda: plot_param_importances(view.study, evaluator=FanovaImportanceEvaluator(seed=0),
                                                target_name=exp.metric),
                 out, "importance.png", f"fANOVA importance for {exp.metric} over {_pruned_note(view, exp)}",
                 (10, 5))
    caption = (f"Share of the variance of {exp.metric} each parameter explains (fANOVA, seed 0) over "
               f"{_pruned_note(view, exp)}.")
    if left_out:
        caption += f" Conditional parameters, not sampled in every trial, are left out: {', '.join(left_out)}."
    return Plot("importance.png", title, caption)


def parallel(view: StudyView, exp: SearchResults, out: Path) -> Figure:
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    title = "Parallel coordinates"
    reason = _too_few(view)
    if reason:
        return Skipped(title, reason)
    _optuna_plot(lambda: plot_parallel_coordinate(view.study, target_name=exp.metric), out, "parallel.png",
                 f"Sampled parameters coloured by {exp.metric}: {_pruned_note(view, exp)}", (11, 5.5))
    return Plot("parallel.png", title, f"One line per trial through its sampled values, coloured by {exp.metric} "
                                       f"({_pruned_note(view, exp)}).")


def numeric(exp: SearchResults, out: Path) -> Figure:
    """The metric against each numeric parameter (Optuna's slice plot, laid out in rows of three so that a
    space of ten parameters stays readable; its own plot_slice puts every parameter in one row)."""
    title = "Metric vs each numeric parameter"
    keys = [key for key in exp.space if key not in exp.categorical()]
    trials = [t for t in exp.trials if t.value is not None]
    if not keys:
        return Skipped(title, "no numeric parameter was searched")
    plt = pyplot()
    ncols = min(3, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows + 0.6), dpi=100, squeeze=False,
                             layout="constrained")
    order = {t.trial_id: i for i, t in enumerate(sorted(trials, key=lambda t: min(t.done_at.values(), default=0)))}
    for ax, key in zip(axes.flat, keys):
        for t in trials:
            if key in t.params:
                complete = t.outcome(exp.epochs) == "complete"
                ax.scatter(t.params[key], t.value, c=[order[t.trial_id]], cmap="viridis", vmin=0,
                           vmax=max(1, len(trials) - 1), marker="o" if complete else "x", s=30)
        if isinstance(exp.space[key], LogUniform):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(exp.metric)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    mappable = ScalarMappable(Normalize(0, max(1, len(trials) - 1)), "viridis")
    bar = fig.colorbar(mappable, ax=axes, shrink=0.8, label="trial, in the order they started")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    fig.suptitle(_wrap(f"{exp.metric} vs each parameter (o ran all trial.epochs, x stopped by ASHA, at its last "
                       "epoch)", fig), fontsize=10)
    save(fig, out / "params.png")
    return Plot("params.png", title, f"Each trial's last {exp.metric} against the values it drew; later trials "
                                     "are yellower (TPE concentrating where it found good values).")


def _label(key: str, value: Any) -> str:
    if key == "model.pretrained":
        return "pretrained" if value else "scratch"
    return str(value)


def choices(exp: SearchResults, out: Path) -> Figure:
    title = "Categorical choices vs metric"
    keys = exp.categorical()
    if not keys:
        return Skipped(title, "no categorical parameter (model.name, model.pretrained, ...) was searched")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(max(5.0, 3.8 * len(keys)), 4.5), dpi=100, squeeze=False,
                             layout="constrained")
    jitter = random.Random(0)
    for ax, key in zip(axes[0], keys):
        values = exp.space[key].values
        labels = [_label(key, v) for v in values]
        for i, value in enumerate(values):
            trials = [t for t in exp.trials if t.value is not None and t.params.get(key) == value]
            for t in trials:
                complete = t.outcome(exp.epochs) == "complete"
                ax.plot(i + jitter.uniform(-0.15, 0.15), t.value, "o" if complete else "x",
                        color="tab:blue" if complete else "grey", ms=6)
            if trials:
                top = (max if exp.mode == "max" else min)(t.value for t in trials)
                ax.hlines(top, i - 0.3, i + 0.3, color="crimson", lw=2)
        ax.set_xticks(range(len(values)), labels, rotation=30 if max(map(len, labels)) > 8 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_title(key, fontsize=10)
        ax.set_ylabel(exp.metric)
    fig.suptitle(_wrap(f"{exp.metric} by value (o ran all trial.epochs, x stopped by ASHA at its last epoch; "
                       "red = best per value)", fig), fontsize=10)
    save(fig, out / "choices.png")
    return Plot("choices.png", title, f"Each trial's last {exp.metric} by the value it drew for "
                                      f"{', '.join(keys)}; stopped trials were judged at fewer epochs.")


def confusion(evaluation: Optional[dict[str, Any]], exp: SearchResults, out: Path, how: str) -> Figure:
    title = "Best trial's confusion matrix on the test split"
    if evaluation is None:
        return Skipped(title, how)
    plot_confusion(evaluation, out / "confusion.png", title=f"best trial {exp.best.trial_id}, test split")
    return Plot("confusion.png", title, f"Rows: true class, columns: predicted; counts in the cells. From "
                                        f"{how}.")
