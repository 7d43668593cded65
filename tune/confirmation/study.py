"""The confirmation runs in optuna-dashboard: a study of their own, ``<experiment>-confirm``, beside the searcher's in
study.db (which the stage never writes). Each finished run is one COMPLETE trial with its finalist's sampled values and
distributions (copied from the search study) and its objectives' values; user attributes name the finalist, the seed
and the Tune trial. Written again from the runs at each update, so a resumed stage never records a run twice."""

from __future__ import annotations

import warnings
from typing import Any

from tune.engines.study import TRIAL_ATTR
from tune.experiment.confirmation import Confirmation
from tune.experiment.layout import study_url
from tune.experiment.records import TERMINATED
from tune.experiment.storage import Experiment
from tune.objectives import Objective

SUFFIX = "-confirm"


def study_name(experiment: Experiment) -> str:
    return f"{experiment.name}{SUFFIX}"


def record_runs(experiment: Experiment, confirmation: Confirmation, objectives: list[Objective]) -> None:
    """Add the finished runs not yet in the confirmation study (by Tune trial id)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_url(experiment.local_dir())
    searched = _search_trials(optuna, experiment, storage)
    study = optuna.create_study(storage=storage, study_name=study_name(experiment), load_if_exists=True,
                                directions=["maximize" if o.mode == "max" else "minimize" for o in objectives])
    if study.metric_names is None:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, and what optuna-dashboard labels axes with
            warnings.simplefilter("ignore")
            study.set_metric_names([o.metric for o in objectives])
    known = {t.user_attrs.get(TRIAL_ATTR) for t in study.get_trials(deepcopy=False)}
    for finalist in confirmation.finalists:
        origin = searched.get(finalist.trial_id)
        for run in finalist.runs:
            values = [run.metrics.get(o.metric) for o in objectives]
            if run.trial_id in known or run.status != TERMINATED or None in values:
                continue
            attrs: dict[str, Any] = {TRIAL_ATTR: run.trial_id, "confirms": finalist.trial_id, "seed": run.seed,
                                     "stage": "confirm", "search_score": finalist.search_score}
            if run.test_acc is not None:
                attrs["test_acc"] = run.test_acc
            study.add_trial(optuna.trial.create_trial(
                params=origin.params if origin else {}, distributions=origin.distributions if origin else {},
                values=values, user_attrs=attrs))


def _search_trials(optuna, experiment: Experiment, storage: str) -> dict[str, Any]:
    """Tune trial id -> the searcher's frozen trial (read only); empty when the search study is not there."""
    try:
        study = optuna.load_study(study_name=experiment.name, storage=storage)
    except KeyError:
        return {}
    return {t.user_attrs[TRIAL_ATTR]: t for t in study.get_trials(deepcopy=False) if TRIAL_ATTR in t.user_attrs}
