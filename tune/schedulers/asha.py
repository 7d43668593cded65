"""Ray Tune's ASHA, with rungs that survive ``--resume``.

Tune saves no scheduler state with an experiment and restores the scheduler as it was built, with empty rungs, so
a resumed search would judge its next trials against nothing and let every one of them through.
:class:`ResumableASHA` replays every restored trial's reported rows (its ``result.json``) into its bracket when
Tune adds the trial back, recording the value each trial reached at each rung, as if the search had never stopped.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler

from infra.ray_compat import replay_into_asha
from train.metrics import REPLAYED
from tune.schedulers.scheduler import Scheduler, result_rows


class ResumableASHA(ASHAScheduler):
    """ASHA whose rungs survive ``--resume`` (see the module docstring)."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        if trial.has_reported_at_least_once:  # only a restored trial has results when it is added
            self._replay(trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(REPLAYED):  # an epoch the trial trained past (train/metrics.py): recorded, nothing decided
            replay_into_asha(self, trial, [result])
            return self.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def _replay(self, trial: Any) -> None:
        replay_into_asha(self, trial, result_rows(trial))


def create(search: Any) -> ResumableASHA:
    return ResumableASHA(metric=search.metric, mode=search.mode, time_attr="epoch", max_t=search.trial.epochs,
                         grace_period=search.budget.grace_period, reduction_factor=search.budget.reduction_factor)


SCHEDULER = Scheduler(name="asha", label="ASHA", create=create)
