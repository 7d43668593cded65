"""The search's Optuna study, and the copy of it that the importance and parallel-coordinate plots read.

The study is the searcher's own ``study.db`` (SQLite, in the experiment folder; for a search stored at a
URI, in ``./runs/<experiment>/`` of the machine that ran it). Where there is none (an experiment analysed
on another machine than the one that searched s3://, or one from before the searcher kept it on disk),
the same study is rebuilt from summary.json and the trials' result.json: parameter distributions from
search.yaml's space, every epoch's metric as an intermediate value (step = epoch), ASHA-stopped trials
PRUNED, finished ones COMPLETE, errored ones FAIL — as the searcher records them.

Optuna's importance evaluators and its parallel-coordinate plot read COMPLETE trials only, which after
ASHA is a few of them. :func:`with_pruned_as_complete` makes an in-memory copy in which every PRUNED (or
unfinished) trial counts as COMPLETE with its last intermediate value, i.e. the metric at the epoch
where it stopped. That is a lower-budget score than the finished trials have, and the plots say so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from infra.ray_compat import distribution_contains
from results.report.data import SearchResults
from tune.distributions import Choice, LogUniform, QUniform, RandInt, Uniform
from tune.experiment.layout import STUDY_FILE
from tune.experiment.storage import is_file, is_uri, local_copy
from tune.objectives import direction


@dataclass
class StudyView:
    study: optuna.Study
    source: str
    """Where it came from: the study.db path, or 'rebuilt from summary.json and result.json'."""
    complete: int
    pruned: int
    """Trials of the copy that were PRUNED (or unfinished) in the search, now COMPLETE at their last value."""


def find_study_db(experiment: SearchResults, scratch: Path) -> Optional[Path]:
    """A local path of the experiment's study.db (copied from object storage when it lives there), or None."""
    inside = experiment.child(STUDY_FILE)
    if is_file(inside):
        return local_copy(inside, scratch)
    if is_uri(experiment.location):  # contract: a URI search keeps its study in Experiment.local_dir()
        local = experiment.folder.local_dir() / STUDY_FILE
        if local.is_file():
            return local
    return None


def load_study(experiment: SearchResults, scratch: Path) -> tuple[optuna.Study, str]:
    """(study, source): the searcher's study.db when there is one, else the study rebuilt from the results."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = find_study_db(experiment, scratch)
    if path is None:
        return rebuild(experiment), "rebuilt from summary.json and result.json (no study.db)"
    storage = f"sqlite:///{path}"
    names = optuna.get_all_study_names(storage)
    # One study per file, named after the experiment folder; take that name if the file somehow holds more.
    name = experiment.name if experiment.name in names or len(names) != 1 else names[0]
    return optuna.load_study(study_name=name, storage=storage), str(path)


def distribution(param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution a tune.space parameter samples from (as its ``suggest`` asks for it)."""
    if isinstance(param, LogUniform):
        return FloatDistribution(param.low, param.high, log=True)
    if isinstance(param, QUniform):
        with warnings.catch_warnings():  # Optuna trims high to a multiple of q, as suggest_float does
            warnings.simplefilter("ignore")
            return FloatDistribution(param.low, param.high, step=param.q)
    if isinstance(param, Uniform):
        return FloatDistribution(param.low, param.high)
    if isinstance(param, RandInt):
        return IntDistribution(param.low, param.high - 1)
    if isinstance(param, Choice):
        return CategoricalDistribution(param.values)
    raise TypeError(f"unknown parameter type {type(param).__name__}")


def rebuild(experiment: SearchResults) -> optuna.Study:
    """An in-memory study holding the experiment's trials as the searcher would have recorded them."""
    study = optuna.create_study(study_name=experiment.name, direction=direction(experiment.mode))
    distributions = {key: distribution(param) for key, param in experiment.space.items()}
    # In the order they started, so trial numbers read as in the search.
    for trial in sorted(experiment.trials, key=lambda t: min(t.done_at.values(), default=float("inf"))):
        params = {k: v for k, v in trial.params.items()
                  if k in distributions and distribution_contains(distributions[k], v)}
        outcome = trial.outcome(experiment.epochs)
        state = (TrialState.FAIL if outcome == "error" else
                 TrialState.COMPLETE if outcome == "complete" else TrialState.PRUNED)
        value = trial.value if state == TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(
            state=state, value=value, params=params, distributions={k: distributions[k] for k in params},
            intermediate_values=dict(trial.curve), user_attrs={"ray_trial_id": trial.trial_id, "status": outcome}))
    return study


def with_pruned_as_complete(study: optuna.Study, metric: Optional[str] = None,
                            last: Optional[dict[str, float]] = None) -> StudyView:
    """In-memory copy: COMPLETE trials as they are, PRUNED/RUNNING ones COMPLETE at their last intermediate value.

    Of a multi-objective study, the copy holds ``metric``'s objective alone (the one ASHA used, whose values the
    intermediate values are): Optuna's importance and parallel-coordinate plots take one objective. Such a study has
    no intermediate values (the searcher tells a stopped trial PRUNED without any): ``last`` gives each trial's last
    ``metric`` by its Ray trial id (summary.json's), so stopped trials count there too."""
    names = study.metric_names or []
    index = names.index(metric) if len(study.directions) > 1 and metric in names else 0
    copy = optuna.create_study(study_name=study.study_name, direction=study.directions[index])
    complete = pruned = 0
    for trial in study.get_trials(deepcopy=False):
        stopped = trial.state in (TrialState.PRUNED, TrialState.RUNNING)
        known = (last or {}).get(trial.user_attrs.get("ray_trial_id"))
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            value, complete = trial.values[index], complete + 1
        elif stopped and trial.intermediate_values:
            value, pruned = trial.intermediate_values[max(trial.intermediate_values)], pruned + 1
        elif stopped and known is not None:
            value, pruned = known, pruned + 1
        else:
            continue
        copy.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=value, params=trial.params, distributions=trial.distributions,
            user_attrs={**trial.user_attrs, "state_in_search": trial.state.name},
            intermediate_values=trial.intermediate_values))
    return StudyView(copy, "", complete, pruned)
