"""Writing the comparison: read every experiment, refuse ones that do not compare (or one given twice), evaluate each
best trial on the test split (unless told not to), group them by engine, draw, and write compare.html (temp name,
then rename)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from results.comparison.facts import Entry, check_comparable, entry, reach
from results.comparison.groups import console_lines, group_entries, group_rows, unfinished, warning_lines


def summary_rows(entries: list[Entry]) -> tuple[list[str], list[list[Any]]]:
    metric = entries[0].exp.metric
    columns = ["experiment", "engine", "trials", "epochs", "wall time (s)", f"best {metric}", "best trial",
               "its test accuracy"]
    # An interrupted or stalled search did not spend its budget: marked where its name is, so it never passes as
    # comparable with the finished ones.
    rows = [[e.name + (" [UNFINISHED]" if unfinished(e) else ""), e.engine, e.exp.summary.num_trials,
             e.exp.summary.total_epochs, round(e.exp.summary.wall_s, 1), e.best_value, e.exp.best.trial_id,
             e.test_accuracy] for e in entries]
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


def refuse_repeats(locations: list[str]) -> None:
    """The same experiment given twice (the same folder once resolved) would be compared with itself: one line."""
    from tune.experiment.records import ExperimentError
    from tune.experiment.storage import normalise

    seen: dict[str, str] = {}
    for location in locations:
        folder = normalise(location)
        if folder in seen:
            same = f" (as {seen[folder]} and {location})" if seen[folder] != location else ""
            raise ExperimentError(f"{folder}: given twice{same}; each experiment is compared once: give it once, and "
                                  "several searches per engine as different experiments")
        seen[folder] = location


def build(locations: list[str], out: Optional[str], evaluate: bool, scratch: Path,
          sizes: Optional[list[int]] = None) -> tuple[str, list[str], list[str]]:
    """Write the comparison; return compare.html's path, the lines for the console and its warnings. ``sizes``: the
    groups' sizes as given with ``--`` (None: grouped by the engine each experiment recorded).
    ExperimentError/DataError (one line) before anything is written when an experiment cannot be read or the
    experiments do not compare."""
    from infra.files import write_atomic
    from results.comparison.page import to_html
    from results.comparison.plots import best_so_far, best_vs_time
    from results.report.data import load
    from results.report.evaluation import best_test_evaluation
    from tune.experiment.records import ExperimentError

    if len(locations) < 2:
        raise ExperimentError("give at least two experiments to compare")
    if sizes is not None and (len(sizes) < 2 or min(sizes) < 1):
        raise ExperimentError("'--' separates groups of experiments: give at least one experiment on each side of "
                              "every '--', e.g. A1 A2 A3 -- B1 B2 B3")
    refuse_repeats(locations)
    experiments = [load(location) for location in locations]
    check_comparable(experiments)
    folder = Path(out) if out else Path("compare")
    if folder.exists() and not folder.is_dir():
        raise ExperimentError(f"--out {folder}: exists and is not a folder")
    entries = []
    for exp in experiments:
        evaluation, _ = best_test_evaluation(exp, evaluate, scratch)
        entries.append(entry(exp, evaluation["accuracy"] if evaluation else None))
    groups = group_entries(entries, sizes)
    folder.mkdir(parents=True, exist_ok=True)
    plots = [best_so_far(groups, folder), best_vs_time(groups, folder)]
    first = entries[0].exp
    notes = [f"{len(entries)} searches of the same data (fingerprint {first.summary.data_fingerprint[:12]}) for "
             f"{first.metric} ({first.mode})",
             "engine = searcher.algorithm + who stopped trials early (budget.scheduler; none: every trial ran to "
             "trial.epochs); W&B runs of each search carry it in their config (engine) and tags",
             "engines: " + "; ".join(f"{g.label}: {g.seeds}" for g in groups)
             + ("" if sizes is not None else " (grouped by the engine each search recorded)")]
    notes += [f"UNFINISHED: {e.name}: {unfinished(e)}" for e in entries if unfinished(e)]
    columns, rows = summary_rows(entries)
    reach_columns, reach_table = reach_rows(entries)
    group_columns, group_table = group_rows(groups)
    tables = [("Searches", columns, rows, "epochs: trial-epochs trained by all trials; wall time: the trials' time "
                                          "over every session of the search (summary.json); test accuracy: the best "
                                          "trial's checkpoint on the test split ('-': not evaluated)"
                                          + ("; [UNFINISHED]: interrupted or stalled, its budget not spent"
                                             if any(unfinished(e) for e in entries) else "")),
              ("Epochs and time to reach each other's best", reach_columns, reach_table,
               "first point of each search's best-so-far curve at or past the other's best; '-': never reached it"),
              ("Engines over seeds", group_columns, group_table,
               "per engine (group): its searches' best (median, min – max); the expected best of n trials from its "
               "trials pooled over its searches (Dodge et al. 2019; mean ± standard deviation), n = the fewest "
               "trials one search had; epochs to reach another engine's median best: the median over its searches, "
               "a search that never reached it counting as more than any ('never': the median did not)")]
    title = "Search comparison: " + " vs ".join(g.label for g in groups)
    write_atomic(folder / "compare.html", to_html(title, notes, tables, plots, folder))
    return str(folder / "compare.html"), console_lines(groups), warning_lines(groups)
