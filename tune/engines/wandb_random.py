"""W&B Sweeps' own engine, method random (``sweeps.next_run``), proposing every trial (tune/engines/wandb_sweep.py)."""

from __future__ import annotations

from typing import Any

from tune.engines.engine import Engine
from tune.engines.wandb_sweep import fixed_sampler, sweep_searcher


def searcher(search: Any, **study: Any):
    return sweep_searcher(search, "random", **study)


ENGINE = Engine(name="wandb_random", sampler=fixed_sampler, searcher=searcher)
