"""The search's compact console output: one line per finished trial with the best so far, and Ray's
status table with only the sampled parameters and the metrics, every minute and at the end.

Ray 2.60's default output engine (``RAY_AIR_NEW_OUTPUT``, on unless set to 0) prints every trial's
whole config as a ~50-row table when it starts and its result table when it ends, and it ignores
``RunConfig(progress_reporter=...)``; so the compact display runs on Tune's other engine, with this
``CLIReporter`` (Ray's public reporter class) as its reporter. ``tune/run_search.py --verbose`` keeps
Ray's default engine and everything it prints. The full configs are in the experiment folder
(``summary.json``, each trial's ``params.json``).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Optional

from ray.tune import CLIReporter

from infra.ray_compat import status_table
from tune.watch import error_file

TABLE_EVERY_S = 60
"""Seconds between status tables (finished trials print their line at once)."""


def use_compact_engine() -> None:
    """Switch Tune to the output engine that honours ``progress_reporter``, and drop one warning.

    Both are read when ``Tuner.fit()`` starts, so this is effective right before it. The experiment
    snapshot warning fires whenever two checkpoints (``CheckpointConfig(num_to_keep=2)``) land within
    5 s, which is the normal case for short epochs; Ray's message says 0 silences it.
    """
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


class CompactReporter(CLIReporter):
    """``CLIReporter`` with the search's parameter and metric columns, plus a line per finished trial."""

    def __init__(self, params: list[str], *, metric: str, mode: str, epochs: int,
                 links: Optional[list[str]] = None, table_every_s: float = TABLE_EVERY_S,
                 experiment_uri: str = "", stopper: str = "ASHA"):
        """``experiment_uri``: the experiment folder, where a failed trial's error text is kept (tune/watch.py);
        ``stopper``: who stops trials early (ASHA, or W&B hyperband: budget.scheduler)."""
        self._stopper = stopper
        metrics = [metric] + [key for key in ("val_acc", "val_loss") if key != metric]
        super().__init__(
            # Tune looks parameters up by "/"-separated path; the header shows the dotted key.
            parameter_columns={key.replace(".", "/"): key for key in params},
            metric_columns={"epoch": "epoch", **{key: key for key in metrics}},
            metric=metric, mode=mode, sort_by_metric=True, print_intermediate_tables=True,
            max_report_frequency=table_every_s)
        self._params = list(params)
        self._epochs = epochs
        self._target, self._mode = metric, mode
        self._experiment_uri = experiment_uri
        self._links = links or []
        self._announced: set[str] = set()
        self._table_every_s = table_every_s
        self._table_due = time.monotonic() + table_every_s
        self._started = time.monotonic()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        super().setup(*args, **kwargs)
        # A resumed search unpickles this reporter from tuner.pkl: its clocks restart here.
        self._started = time.monotonic()
        self._table_due = self._started + self._table_every_s

    def should_report(self, trials: list, done: bool = False) -> bool:
        finished = any(t.status in ("TERMINATED", "ERROR") and t.trial_id not in self._announced for t in trials)
        return done or finished or time.monotonic() >= self._table_due

    def report(self, trials: list, done: bool, *sys_info: str) -> None:
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR") and trial.trial_id not in self._announced:
                self._announced.add(trial.trial_id)
                self._print(self._trial_line(trial, trials))
        if done or time.monotonic() >= self._table_due:
            self._table_due = time.monotonic() + self._table_every_s
            self._print(self._status(trials, done, sys_info))

    def _status(self, trials: list, done: bool, sys_info: tuple) -> str:
        """Ray's status block and table, with the search's links and a short best line instead of Ray's
        staging "Result logdir" (a temp folder, not the experiment) and its full-precision best line."""
        lines = []
        views = [SampledView(trial, self._params) for trial in trials]
        for line in status_table(self, views, done, *sys_info, *self._links).splitlines():
            if line.startswith("Result logdir:"):
                continue
            if line.startswith("Current best trial:"):
                line = self._best_line(trials)
            lines.append(line)
        return "\n".join(lines)

    def _best_line(self, trials: list) -> str:
        best = self._best(trials)
        if best is None:
            return "Best so far: none yet"
        result = best.last_result
        return (f"Best so far: trial {best.trial_id}, {self._target} {result[self._target]:.4f} at epoch "
                f"{result.get('epoch', '?')} | {_params_text(best.evaluated_params)}")

    def _best(self, trials: list) -> Optional[Any]:
        """The trial whose last result is best on the search's metric (None before any reported it)."""
        scored = [t for t in trials if isinstance((t.last_result or {}).get(self._target), (int, float))
                  and not math.isnan(t.last_result[self._target])]
        pick = max if self._mode == "max" else min
        return pick(scored, key=lambda t: t.last_result[self._target]) if scored else None

    def _trial_line(self, trial, trials: list) -> str:
        result: dict[str, Any] = trial.last_result or {}
        epochs = int(result.get("epoch", 0))
        if trial.status == "ERROR":
            what = f"failed after {epochs} epoch(s) (error: {error_file(self._experiment_uri, trial.trial_id)})"
        elif epochs < self._epochs:
            # getattr: a reporter pickled with a search before stoppers were named has none
            what = f"stopped by {getattr(self, '_stopper', 'ASHA')} at epoch {epochs}/{self._epochs}"
        else:
            what = f"finished {epochs}/{self._epochs} epochs"
        value = result.get(self._target)
        score = f"{self._target} {value:.4f}" if isinstance(value, (int, float)) else f"no {self._target}"
        best = self._best(trials)
        best_text = ""
        if best is not None:
            best_text = f" | best {best.last_result[self._target]:.4f} (trial {best.trial_id})"
        elapsed = time.monotonic() - self._started
        return (f"[{elapsed:5.0f} s] trial {trial.trial_id} {what}: {score}"
                f" | {_params_text(trial.evaluated_params)}{best_text}")


class SampledView:
    """A trial as Ray's status table reads it, but with a config of only what the searcher sampled for it and
    "-" in every other parameter column: Ray looks columns up in the whole trial config, where a parameter a
    trial never sampled (``model.cnn.blocks`` of a MobileNet trial, whose ``when`` did not hold) shows its
    default as if it had been searched."""

    def __init__(self, trial: Any, params: list[str]):
        self._trial = trial
        sampled = {key.replace("/", "."): value for key, value in (trial.evaluated_params or {}).items()}
        self.config: dict[str, Any] = {}
        for key in params:
            node = self.config
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = sampled.get(key, "-")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def __str__(self) -> str:
        return str(self._trial)


def _params_text(evaluated: dict[str, Any]) -> str:
    """What the searcher sampled for a trial (Tune keeps it "/"-flattened), dotted and short."""
    return " ".join(f"{key.replace('/', '.')}={value:.3g}" if isinstance(value, float)
                    else f"{key.replace('/', '.')}={value}" for key, value in evaluated.items())
