"""How a search ends when it does not finish: stopped by a signal (the resume command to print) or with no trial
reporting the metric (one line); tune/search.py raises them, tune/run_search.py turns them into exit codes."""

from __future__ import annotations

from typing import Optional

from tune.experiment.layout import SEARCH_FILE, SUMMARY_FILE
from tune.experiment.records import Summary
from tune.experiment.storage import Experiment
from tune.space import SearchFile


class SearchInterrupted(Exception):
    """Ctrl-C or SIGTERM: the search stopped; ``summary`` is its summary.json (None when stopped at once);
    ``code`` the exit code (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, experiment: Optional[Experiment], summary: Optional[str], code: int = 130):
        super().__init__("interrupted")
        self.experiment = experiment
        self.summary = summary
        self.code = code

    def lines(self) -> list[str]:
        if self.experiment is None:
            return ["interrupted before the search started: nothing to continue"]
        how = ("stopped at once; the search state saved last is kept" if self.summary is None
               else "interrupted; finished trials are kept, unfinished ones continue from their checkpoints")
        return [f"{how}. Continue with:",
                f"  python tune/run_search.py --config {self.experiment.child(SEARCH_FILE)} "
                f"--resume {self.experiment.uri}"]


class SearchFailed(Exception):
    """No trial reported the metric; the message is one line."""


def no_result(summary: Summary, search: SearchFile, experiment: Experiment) -> Exception:
    """The one line for a search in which no trial reported the metric."""
    errors = [t.error for t in summary.trials if t.error]
    first = f"; first error: {errors[0]}" if errors else ""
    return SearchFailed(f"no trial reported '{search.metric}' ({summary.num_errors} of "
                        f"{summary.num_trials} failed{first}); see {experiment.child(SUMMARY_FILE)}")
