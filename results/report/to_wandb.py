"""The report as a W&B run in the search's group: the leaderboard table, every plot, and the best trial's
test confusion matrix (W&B's own interactive chart plus the PNG).

Like the search's trial runs, it goes online when ``WANDB_API_KEY`` is set and is written offline under
``<experiment>/wandb/`` otherwise (``wandb sync`` uploads it later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from results.report.data import SearchResults
from results.report.plots import Figure, Plot
from tune.wandb_logging import wandb_mode


def enabled(exp: SearchResults) -> bool:
    return exp.search.wandb.enabled


def _column(values: list[Any]) -> list[Any]:
    """One type per W&B table column: numbers stay numbers, a column mixing types (or None) becomes text."""
    kinds = {type(v) for v in values if v is not None}
    if values and None not in values and (kinds <= {int, float} or len(kinds) == 1):
        return values
    return ["" if v is None else str(v) for v in values]


def log_report(exp: SearchResults, columns: list[str], rows: list[list[Any]], figures: list[Figure], report_dir: Path,
               evaluation: Optional[dict[str, Any]]) -> str:
    """Log the report to a new run in the experiment's W&B group; return a line saying where it went."""
    import wandb

    settings = exp.search.wandb
    mode = wandb_mode()  # as the search's trial runs: offline without WANDB_API_KEY
    local = exp.folder.local_dir()  # where the search wrote its trial runs
    local.mkdir(parents=True, exist_ok=True)
    best = exp.best
    run = wandb.init(project=settings.project, entity=settings.entity,
                     group=exp.name, job_type="report", name=f"{exp.name}-report", dir=str(local), mode=mode,
                     config={"experiment": exp.location, "metric": exp.metric, "mode": exp.mode,
                             "num_trials": len(exp.trials), "best_trial": best.trial_id},
                     reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False,
                                             disable_git=True, x_save_requirements=False))
    try:
        by_column = [_column([row[i] for row in rows]) for i in range(len(columns))]
        table = wandb.Table(columns=columns, data=[list(values) for values in zip(*by_column)])
        logged: dict[str, Any] = {"leaderboard": table}
        for figure in figures:
            if isinstance(figure, Plot):
                logged[f"plots/{Path(figure.file).stem}"] = wandb.Image(str(report_dir / figure.file),
                                                                        caption=figure.caption)
        if evaluation is not None:
            labels, predicted = [], []
            for true, row in enumerate(evaluation["confusion_matrix"]):
                for guess, count in enumerate(row):
                    labels += [true] * count
                    predicted += [guess] * count
            logged["confusion_matrix"] = wandb.plot.confusion_matrix(
                y_true=labels, preds=predicted, class_names=list(evaluation["class_names"]),
                title=f"best trial {best.trial_id}, test split")
            run.summary["test_accuracy"] = evaluation["accuracy"]
        run.log(logged)
        run.summary[f"best_{exp.metric}"] = best.value
        run.summary["best_trial"] = best.trial_id
        where = f"offline run {run.dir.rsplit('/files', 1)[0]} (upload: wandb sync <it>)" if mode == "offline" \
            else run.url
    finally:
        run.finish()
    return f"W&B: run {exp.name}-report in group {exp.name}: {where}"
