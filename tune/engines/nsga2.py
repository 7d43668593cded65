"""Optuna's NSGA-II (multi-objective searches only; tune/space.py refuses it for one metric)."""

from __future__ import annotations

from typing import Any

import optuna

from tune.engines.engine import Engine


def sampler(settings: Any, space: Any, concurrency: int, seed: int) -> optuna.samplers.BaseSampler:
    # Optuna's NSGA-II has no constant liar: it proposes from the finished generations only.
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=settings.startup_trials)


ENGINE = Engine(name="nsga2", sampler=sampler)
