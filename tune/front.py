"""A multi-objective search's Pareto front, read from its Optuna study: the finished (COMPLETE) trials that no
other finished trial beats on every objective. Optuna's own ``study.best_trials`` decides; trials ASHA stopped
are PRUNED there and have no values (tune/engines/study.py), so they are never on the front."""

from __future__ import annotations

from tune.engines.study import TRIAL_ATTR
from tune.experiment.layout import study_url
from tune.experiment.storage import Experiment
from tune.objectives import Objective


def front_trial_ids(experiment: Experiment, objectives: list[Objective]) -> list[str]:
    """Tune trial ids of the study's Pareto front, best first on the first objective (ties: on the next)."""
    import optuna

    study = optuna.load_study(study_name=experiment.name, storage=study_url(experiment.local_dir()))
    signs = [-1.0 if objective.mode == "max" else 1.0 for objective in objectives]
    front = sorted(study.best_trials, key=lambda t: [sign * value for sign, value in zip(signs, t.values)])
    return [t.user_attrs[TRIAL_ATTR] for t in front if TRIAL_ATTR in t.user_attrs]
