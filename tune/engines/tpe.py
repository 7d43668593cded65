"""Optuna's TPE; with ``objectives``, its multi-objective form (MOTPE: the same sampler over several directions)."""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from tune.distributions import Param
from tune.engines.engine import Engine


def tpe_options(settings: Any, space: dict[str, Param], concurrency: int) -> dict[str, Any]:
    """TPESampler's settings from the search file's ``searcher:`` section ("auto" resolved)."""
    group = settings.group if settings.group != "auto" else any(param.when for param in space.values())
    liar = settings.constant_liar if settings.constant_liar != "auto" else concurrency > 1
    return {"n_startup_trials": settings.startup_trials, "multivariate": settings.multivariate,
            "group": bool(group and settings.multivariate), "constant_liar": bool(liar)}


def sampler(settings: Any, space: dict[str, Param], concurrency: int, seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group, in Optuna 5.0
        return optuna.samplers.TPESampler(seed=seed, **tpe_options(settings, space, concurrency))


ENGINE = Engine(name="tpe", sampler=sampler)
