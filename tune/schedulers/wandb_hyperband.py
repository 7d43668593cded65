"""W&B's hyperband as the search's trial scheduler: ``sweeps.stop_runs`` decides, on every result, whether the
trial that reported stops.

W&B's controller runs hyperband over every run's metric history (``early_terminate``: min_iter = grace period,
eta = reduction factor; tune/engines/wandb_config.py engine_config). It looks at a run's history by row index: band b
judges a running run once it has more than b rows, against the top 1/eta of all runs' values at row b, by the run's best
value so far. :class:`WandbHyperband` keeps each trial's metric per epoch (its history, one row per epoch, as W&B
would have it), marks the trials that ended, and hands them all to ``stop_runs``; Tune then stops the trial.
The searcher sees a stopped trial as PRUNED (fewer epochs than trial.epochs), as for ASHA.

Resume: Tune saves no scheduler state; a restored trial's rows (result.json) are replayed into its history when
Tune adds it back (as tune/schedulers/asha.py's ResumableASHA does), so the bands see what they saw before the stop.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tune.engines.wandb_config import engine_config, sweeps_module
from tune.schedulers.scheduler import Scheduler, result_rows


class WandbHyperband(FIFOScheduler):
    """Stops trials by W&B's hyperband; see the module docstring."""

    def __init__(self, sweep_config: dict[str, Any], *, metric: str, mode: str, epochs: int, time_attr: str = "epoch"):
        super().__init__()
        self.sweep_config = sweep_config
        self.metric_name = metric
        self.epochs = epochs
        self.time_attr = time_attr
        self._history: dict[str, dict[int, float]] = {}
        """Trial id -> epoch -> metric."""
        self._ended: dict[str, str] = {}
        """Trial id -> W&B run state of a trial that ended (finished, killed, failed)."""

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode come from the search file

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._history.setdefault(trial.trial_id, {})
        if trial.has_reported_at_least_once:  # a restored trial: its rows from before the stop
            for row in result_rows(trial):
                self._record(trial.trial_id, row)
        if trial.status in ("TERMINATED", "ERROR"):
            self._end(trial.trial_id, failed=trial.status == "ERROR")

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._record(trial.trial_id, result)
        stopping = {run.name for run in self._stop_runs()}
        return TrialScheduler.STOP if trial.trial_id in stopping else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._record(trial.trial_id, result or {})
        self._end(trial.trial_id, failed=False)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._end(trial.trial_id, failed=True)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._end(trial.trial_id, failed=False)

    def debug_string(self) -> str:
        return f"W&B hyperband over {len(self._history)} trials"

    # -- the engine ----------------------------------------------------------------------------
    def _record(self, trial_id: str, row: dict) -> None:
        step, value = row.get(self.time_attr), row.get(self.metric_name)
        if isinstance(step, (int, float)) and isinstance(value, (int, float)) and math.isfinite(value):
            self._history.setdefault(trial_id, {})[int(step)] = float(value)

    def _end(self, trial_id: str, failed: bool) -> None:
        epochs = len(self._history.get(trial_id, {}))
        self._ended[trial_id] = "failed" if failed else ("finished" if epochs >= self.epochs else "killed")

    def _stop_runs(self) -> list:
        sweeps = sweeps_module()
        runs = [sweeps.SweepRun(name=trial_id, state=self._ended.get(trial_id, "running"),
                                sampledHistory=[{self.metric_name: value} for _, value in sorted(history.items())])
                for trial_id, history in self._history.items()]
        return sweeps.stop_runs(self.sweep_config, runs)


def create(search: Any) -> WandbHyperband:

    return WandbHyperband(engine_config(search), metric=search.metric, mode=search.mode, epochs=search.trial.epochs)


SCHEDULER = Scheduler(name="wandb_hyperband", label="W&B hyperband", create=create)
