"""Engines over seeds: the compared experiments in groups (one per engine, or as given with ``--``), and what each
group says over its searches: the median and spread of their best-so-far curves against epochs, their bests, the
expected best against the number of trials from their pooled trials, and the epochs each group needed to reach the
other groups' median best."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional

from results.comparison.expected import ExpectedBest, expected_best
from results.comparison.facts import Entry, reach
from tune.experiment.records import ERROR, TERMINATED


@dataclass
class Group:
    label: str
    entries: list[Entry]

    @property
    def mode(self) -> str:
        return self.entries[0].exp.mode

    @property
    def seeds(self) -> str:
        """'1 search (one seed: no spread)' or 'n searches'."""
        n = len(self.entries)
        return "1 search (one seed: no spread)" if n == 1 else f"{n} searches"

    @property
    def bests(self) -> list[float]:
        return [e.best_value for e in self.entries]

    @property
    def median_best(self) -> float:
        return statistics.median(self.bests)

    def scores(self) -> list[float]:
        """Every scored trial's last metric over the group's searches (pooled): the draws of the estimator."""
        return [value for e in self.entries for value in _drawn(e)]

    def fewest(self) -> int:
        """The fewest trials one of its searches contributed (at least 1): where the expected best is read off."""
        return max(1, min(len(_drawn(e)) for e in self.entries))

    def expected_at(self, n: int, digits: tuple[str, str] = (".4g", ".2g")) -> str:
        """'mean ± std' of the best of n trials; '-' without a finished trial to draw from."""
        expected = self.expected(n)
        return f"{expected[-1].mean:{digits[0]}} ± {expected[-1].std:{digits[1]}}" if expected else "-"

    def expected(self, up_to: Optional[int] = None) -> list[ExpectedBest]:
        """For n = 1..up_to (default: the pooled count; more is fine: draws are with replacement)."""
        return expected_best(self.scores(), self.mode, up_to)

    def band(self) -> tuple[list[int], list[float], list[float], list[float]]:
        """(epochs 1..the shortest search's, median, min, max) of the searches' best-so-far at each epoch count:
        over every search of the group, so the band stops where the shortest one ended."""
        shortest = min(len(e.best) for e in self.entries)
        xs = list(range(1, shortest + 1))
        at = [[e.best[x - 1] for e in self.entries] for x in xs]
        return xs, [statistics.median(v) for v in at], [min(v) for v in at], [max(v) for v in at]


def _drawn(entry: Entry) -> list[float]:
    """A search's trials' last scores; a trial an interrupt cut short (UNFINISHED) is left out: its score is not one
    the search gave it. Early-stopped trials count, at the score they were stopped with."""
    return [t.value for t in entry.exp.scored() if t.status in (TERMINATED, ERROR)]


def unfinished(entry: Entry) -> Optional[str]:
    """The marker of a search that did not run its budget (interrupted or stalled), else None."""
    summary = entry.exp.summary
    if not summary.interrupted and summary.stalled is None:
        return None
    done = sum(t.status in (TERMINATED, ERROR) for t in summary.trials)
    how = "stalled" if summary.stalled is not None else "interrupted"
    return (f"{how}: {done} of {entry.exp.budget.num_samples} trials finished, {summary.total_epochs} epochs; "
            "its budget is not the others'")


def group_entries(entries: list[Entry], given: Optional[list[int]]) -> list[Group]:
    """``given``: the group sizes, in order (``A1 A2 -- B1 B2``: [2, 2]); None: one group per recorded engine, in the
    order the engines first appear."""
    if given is None:
        engines = list(dict.fromkeys(e.engine for e in entries))
        return [Group(engine, [e for e in entries if e.engine == engine]) for engine in engines]
    parts, start = [], 0
    for size in given:
        parts.append(entries[start:start + size])
        start += size
    engines = [sorted({e.engine for e in part}) for part in parts]
    named = all(len(names) == 1 for names in engines) and len({names[0] for names in engines}) == len(parts)
    return [Group(names[0] if named else f"group {i} ({', '.join(names)})", part)
            for i, (names, part) in enumerate(zip(engines, parts), start=1)]


def epochs_to_reach(group: Group, target: float) -> tuple[Optional[float], int]:
    """(median epochs the group's searches needed to reach ``target``, a search that never did counting as more
    than any; None when the median itself never reached it), and how many reached it."""
    got = [reach(e, target, group.mode) for e in group.entries]
    epochs = [math.inf if g is None else g[0] for g in got]
    median = statistics.median(epochs)
    return (None if math.isinf(median) else median), sum(g is not None for g in got)


def group_rows(groups: list[Group]) -> tuple[list[str], list[list]]:
    """Per group: searches, best metric median (min – max), the pooled trials, expected best at a few trial
    counts, and the median epochs to reach each other group's median best."""
    metric = groups[0].entries[0].exp.metric
    counts = sorted({g.fewest() for g in groups})
    columns = ["engine", "searches", f"best {metric}: median (min – max)", "trials pooled",
               *(f"expected best of {n} trials" for n in counts)]
    if len(groups) > 1:
        columns += [f"epochs to reach {o.label}'s median best ({o.median_best:.4g})" for o in groups]
    rows = []
    for g in groups:
        spread = "" if len(g.entries) == 1 else f" ({min(g.bests):.4g} – {max(g.bests):.4g})"
        row = [g.label, g.seeds, f"{g.median_best:.4g}{spread}", len(g.scores()),
               *(g.expected_at(n) for n in counts)]
        if len(groups) > 1:
            for other in groups:
                median, reached = epochs_to_reach(g, other.median_best)
                row.append(f"{'never' if median is None else f'{median:g}'} ({reached} of {len(g.entries)} reached)")
        rows.append(row)
    return columns, rows


def console_lines(groups: list[Group]) -> list[str]:
    lines = []
    metric = groups[0].entries[0].exp.metric
    for g in groups:
        n = g.fewest()
        spread = "" if len(g.entries) == 1 else f" (min {min(g.bests):.4f}, max {max(g.bests):.4f})"
        lines.append(f"{g.label}: {g.seeds}; best {metric} median {g.median_best:.4f}{spread}; expected best of {n} "
                     f"trials {g.expected_at(n, ('.4f', '.4f'))} (from {len(g.scores())} trials)")
        for other in groups:
            if other is not g:
                median, reached = epochs_to_reach(g, other.median_best)
                lines.append(f"  to reach {other.label}'s median best {other.median_best:.4f}: "
                             f"{'never' if median is None else f'{median:g} epochs'} (median; {reached} of "
                             f"{len(g.entries)} searches reached it)")
    return lines


def warning_lines(groups: list[Group]) -> list[str]:
    """One ``warning:`` line (stderr, like every warning of the project) per unfinished search."""
    return [f"warning: {e.name} is unfinished ({unfinished(e)})" for g in groups for e in g.entries if unfinished(e)]
