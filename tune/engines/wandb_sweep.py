"""W&B's sweep engine as the search's searcher (engines wandb_bayes, wandb_random): ``sweeps.next_run`` proposes every
trial, the Optuna study records it.

:class:`SweepSearcher` is the project's StudySearcher (tune/engines/study.py) with only the proposal replaced: before
each ``ask`` it rebuilds the sweep's runs from the study (every trial so far: its values, its per-epoch metric as
history, its state), asks ``sweeps.next_run`` (method bayes or random) for the next values, and enqueues them in
the study, whose ``ask`` then takes them as fixed parameters. Everything else is StudySearcher's: per-epoch
intermediate values, stopped trials told PRUNED, study.db as the one record (optuna-dashboard, report, --resume).
Because the runs come from study.db, a resumed search hands the engine exactly the runs it had.

Study state -> W&B run state: RUNNING -> running, COMPLETE -> finished, PRUNED (stopped early by the scheduler) ->
killed, FAIL -> failed. W&B's bayes fits its Gaussian process to finished runs by their best metric and gives
killed and failed runs the worst metric seen (its ``metric.impute: worst`` default), as on W&B's own server.

Every sweep value is stored as the trial's user attribute ``sweep_values`` (the engine's own vector, conditional
parameters included); the study's parameters are the values the trial used (a conditional parameter whose
``when`` fails is left out, tune/engines/wandb_params.py). The sweep config the engine runs is the one
``python -m tune.sweep export`` writes (tune/engines/wandb_config.py), method from the engine's name
(tune/engines/wandb_config.py :func:`engine_config`).

Reproducibility: the engine draws from Python's ``random`` (random search, params.HyperParameter.sample) and
numpy's global RNG (bayes: its random candidates and GP subsampling; sklearn's GP is fixed at random_state=2).
Both are seeded per suggestion with ``searcher.seed + trials in the study`` (and put back afterwards), so the same
runs give the same proposal, and a resumed search continues as an uninterrupted one would. Not reproducible where
the runs themselves differ: with several trials at once, which trials have reported when a proposal is made
depends on timing (as for TPE).
"""

from __future__ import annotations

import logging
import random
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional

import numpy as np

from tune.engines.study import StudySearcher
from tune.engines.wandb_config import engine_config, sweeps_module
from tune.engines.wandb_params import active, snap

if TYPE_CHECKING:  # annotations only: tune/space.py imports this package's registry
    from tune.space import SearchFile

SWEEP_ATTR = "sweep_values"
"""User attribute of each Optuna trial the engine proposed: every sweep value, by space key."""


class SweepSearcher(StudySearcher):
    """StudySearcher whose proposals come from W&B's sweep engine; see the module docstring."""

    def __init__(self, sweep_config: dict[str, Any], *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sweep_config = sweep_config
        """The sweep config the engine runs (:func:`engine_config`)."""

    def suggest(self, trial_id: str) -> Optional[dict]:
        from optuna.trial import TrialState

        study = self.study
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.WAITING for t in trials):  # warm-start points go first, as they are
            values = self.propose(trials)
            study.enqueue_trial(active(values, self.space), user_attrs={SWEEP_ATTR: values})
        return super().suggest(trial_id)

    def propose(self, trials: list) -> dict[str, Any]:
        """The engine's next values (by space key, plain Python) after ``trials`` (Optuna FrozenTrials)."""
        runs = sweep_runs(trials, self.space, self.metric)
        with seeded(self.settings.seed + len(trials)), quiet():
            run = sweeps_module().next_run(self.sweep_config, runs)
        return {key: snap(self.space[key], item["value"]) for key, item in run.config.items() if key in self.space}


def fixed_sampler(settings: Any, space: Any, concurrency: int, seed: int):
    """The study's sampler under W&B's engine: every parameter arrives fixed (enqueued), so it only ever sees
    warm-start points, which are fixed too."""
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def sweep_searcher(search: SearchFile, method: str, **study: Any) -> SweepSearcher:
    """The searcher of engine ``wandb_<method>`` over ``search``; ``study``: where its study lives."""
    return SweepSearcher(engine_config(search, method), search.space, search.searcher, metric=search.metric,
                         mode=search.mode, epochs=search.trial.epochs, objectives=search.objectives, **study)


def sweep_runs(trials: list, space: dict, metric: str) -> list:
    """The sweep's runs as W&B's engine sees them, one per study trial that has started (see the module docstring)."""
    from optuna.trial import TrialState

    sweeps = sweeps_module()
    state_of = {TrialState.RUNNING: sweeps.RunState.running, TrialState.COMPLETE: sweeps.RunState.finished,
                TrialState.PRUNED: sweeps.RunState.killed, TrialState.FAIL: sweeps.RunState.failed}
    runs = []
    for trial in trials:
        if trial.state not in state_of:
            continue  # WAITING: not started
        values = trial.user_attrs.get(SWEEP_ATTR) or dict(trial.params)
        history = [{metric: value} for _, value in sorted(trial.intermediate_values.items())]
        runs.append(sweeps.SweepRun(name=str(trial.number), state=state_of[trial.state], sampledHistory=history,
                                    config={key: {"value": value} for key, value in values.items() if key in space}))
    return runs


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Python's and numpy's global RNGs seeded for the engine's draws, then put back as they were."""
    saved_random, saved_numpy = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(saved_random)
        np.random.set_state(saved_numpy)


@contextmanager
def quiet() -> Iterator[None]:
    """The engine's own noise off: a run without a value for a parameter (a warm-start point of a conditional
    space) is logged as a root-logger warning, the GP fit warns about convergence; neither is the user's to fix."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
