"""The search engines that propose trials, one module per ``searcher.algorithm``, behind a registry (as Optuna's
``samplers/``; chosen by name like train/data/readers/).

Each module ``tune/engines/<name>.py`` holds ``ENGINE`` (tune/engines/engine.py): its Optuna sampler and, where the
proposals come from elsewhere (W&B's sweep engine), its Tune searcher. Every engine records its trials in the one
Optuna study (tune/engines/study.py). Adding an engine: its module here, and its name in :data:`ENGINES`; the
search file accepts the name from there (tune/space.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tune.engines.engine import Engine

ENGINES = ("tpe", "random", "nsga2", "wandb_bayes", "wandb_random")
"""Every ``searcher.algorithm``, each the name of its module in this package. Modules are imported when an engine is
used, not here: Optuna, Ray and W&B's sweeps are slow imports that checking a search file never needs."""


def get_engine(name: str) -> "Engine":
    """The engine registered as ``name`` (a value the search file's schema already checked)."""
    if name not in ENGINES:
        raise KeyError(f"searcher.algorithm {name!r} is not one of {', '.join(ENGINES)}")
    return importlib.import_module(f"{__name__}.{name}").ENGINE
