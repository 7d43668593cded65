"""Writing the comparison: read every experiment, refuse ones that do not compare, evaluate each best trial on the
test split (unless told not to), draw, and write compare.html (temp name, then rename)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from results.comparison.facts import Entry, check_comparable, entry, reach


def summary_rows(entries: list[Entry]) -> tuple[list[str], list[list[Any]]]:
    metric = entries[0].exp.metric
    columns = ["experiment", "engine", "trials", "epochs", "wall time (s)", f"best {metric}", "best trial",
               "its test accuracy"]
    rows = [[e.name, e.engine, e.exp.summary.num_trials, e.exp.summary.total_epochs, round(e.exp.summary.wall_s, 1),
             e.best_value, e.exp.best.trial_id, e.test_accuracy] for e in entries]
    return columns, rows


def reach_rows(entries: list[Entry]) -> tuple[list[str], list[list[Any]]]:
    """Per experiment: epochs and seconds it needed to reach each other experiment's best ('-': never did)."""
    mode = entries[0].exp.mode
    columns = ["experiment"] + [f"to reach {o.name}'s best ({o.best_value:.4g}): epochs / s" for o in entries]
    rows = []
    for e in entries:
        row: list[Any] = [e.name]
        for other in entries:
            got = reach(e, other.best_value, mode)
            row.append(None if got is None else f"{got[0]} / {got[1]:.0f}")
        rows.append(row)
    return columns, rows


def build(locations: list[str], out: Optional[str], evaluate: bool, scratch: Path) -> str:
    """Write the comparison; return compare.html's path. ExperimentError/DataError (one line) before anything is
    written when an experiment cannot be read or the experiments do not compare."""
    from infra.files import write_atomic
    from results.comparison.page import to_html
    from results.comparison.plots import best_so_far
    from results.report.data import load
    from results.report.evaluation import best_test_evaluation
    from tune.experiment.records import ExperimentError

    if len(locations) < 2:
        raise ExperimentError("give at least two experiments to compare")
    experiments = [load(location) for location in locations]
    check_comparable(experiments)
    folder = Path(out) if out else Path("compare")
    if folder.exists() and not folder.is_dir():
        raise ExperimentError(f"--out {folder}: exists and is not a folder")
    entries = []
    for exp in experiments:
        evaluation, _ = best_test_evaluation(exp, evaluate, scratch)
        entries.append(entry(exp, evaluation["accuracy"] if evaluation else None))
    folder.mkdir(parents=True, exist_ok=True)
    plots = [best_so_far(entries, folder, "epochs"), best_so_far(entries, folder, "seconds")]
    first = entries[0].exp
    notes = [f"{len(entries)} searches of the same data (fingerprint {first.summary.data_fingerprint[:12]}) for "
             f"{first.metric} ({first.mode})",
             "engine = searcher.algorithm + who stopped trials early (budget.scheduler; none: every trial ran to "
             "trial.epochs); W&B runs of each search carry it in their config (engine) and tags"]
    columns, rows = summary_rows(entries)
    reach_columns, reach_table = reach_rows(entries)
    tables = [("Searches", columns, rows, "epochs: trial-epochs trained by all trials; wall time: the trials' time "
                                          "over every session of the search (summary.json); test accuracy: the best "
                                          "trial's checkpoint on the test split ('-': not evaluated)"),
              ("Epochs and time to reach each other's best", reach_columns, reach_table,
               "first point of each search's best-so-far curve at or past the other's best; '-': never reached it")]
    write_atomic(folder / "compare.html", to_html("Search comparison: " + " vs ".join(e.name for e in entries),
                                                  notes, tables, plots, folder))
    return str(folder / "compare.html")
