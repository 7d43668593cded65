"""Optuna's random sampler: the baseline every other engine is compared with."""

from __future__ import annotations

from typing import Any

import optuna

from tune.engines.engine import Engine


def sampler(settings: Any, space: Any, concurrency: int, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


ENGINE = Engine(name="random", sampler=sampler)
