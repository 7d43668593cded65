"""The module paths an experiment written before tune/engines/ and tune/schedulers/ existed names in its pickles.

Tune pickles the search algorithm (its searcher, the searcher's settings) and the scheduler into the experiment
(``tuner.pkl``, ``searcher-state-*.pkl``) by module path and class name, and ``--resume`` unpickles them. Their
classes have since moved: :func:`install` makes each old path an alias of the new home before ``Tuner.restore``,
so such an experiment still resumes. Nothing else imports the old paths.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

MOVED = {
    "tune.searcher": {"StudySearcher": "tune.engines.study"},
    "tune.sweep.searcher": {"SweepSearcher": "tune.engines.wandb_sweep"},
    "tune.resumable": {"ResumableASHA": "tune.schedulers.asha", "ExtendableSearch": "tune.resume"},
    "tune.sweep.hyperband": {"WandbHyperband": "tune.schedulers.wandb_hyperband"},
}
"""Old module -> class name -> the module that holds the class now."""


class _Alias(types.ModuleType):
    """An old module path: its classes, imported from their new modules when pickle asks for them."""

    def __init__(self, name: str, classes: dict[str, str]):
        super().__init__(name, f"moved: {', '.join(f'{c} to {m}' for c, m in classes.items())}")
        self._classes = classes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in self._classes:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(importlib.import_module(self._classes[name]), name)


def install() -> None:
    """Make every old path importable (pickle imports the module, then takes the class from it)."""
    for old, classes in MOVED.items():
        sys.modules.setdefault(old, _Alias(old, classes))
