"""The engine and scheduler registries: adding one is its module plus its name in the registry (README: search
engines and schedulers)."""

from __future__ import annotations

import pickle
import pkgutil
import typing

import pytest

import tune.engines
import tune.schedulers
from tune.engines import ENGINES, get_engine
from tune.schedulers import NO_EARLY_STOPPING, SCHEDULERS, get_scheduler
from tune.space import Budget, SearcherConfig

SHARED = {"engines": {"engine", "study", "wandb_sweep", "wandb_config", "wandb_params"}, "schedulers": {"scheduler"}}
"""Modules of the packages that are no entry: the registry's entry type and the code several entries share."""


def _modules(package) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(package.__path__)}


def test_every_engine_is_a_module_and_every_module_an_engine():
    assert set(ENGINES) == _modules(tune.engines) - SHARED["engines"]
    for name in ENGINES:
        entry = get_engine(name)
        assert entry.name == name and entry.sampler.__module__.startswith("tune.engines.")


def test_every_scheduler_is_a_module_and_every_module_a_scheduler():
    assert set(SCHEDULERS) == _modules(tune.schedulers) - SHARED["schedulers"]
    assert all(get_scheduler(name).name == name for name in SCHEDULERS)


def test_the_search_file_accepts_exactly_the_registered_names():
    assert typing.get_args(SearcherConfig.model_fields["algorithm"].annotation) == ENGINES
    accepted = typing.get_args(Budget.model_fields["scheduler"].annotation)
    assert set(accepted) | {NO_EARLY_STOPPING} == set(SCHEDULERS) and NO_EARLY_STOPPING not in accepted


def test_an_unknown_name_is_refused():
    with pytest.raises(KeyError, match="not one of tpe, random"):
        get_engine("hyperopt")


@pytest.mark.parametrize("old, name, new", [
    ("tune.searcher", "StudySearcher", "tune.engines.study"),
    ("tune.sweep.searcher", "SweepSearcher", "tune.engines.wandb_sweep"),
    ("tune.resumable", "ResumableASHA", "tune.schedulers.asha"),
    ("tune.resumable", "ExtendableSearch", "tune.resume"),
    ("tune.sweep.hyperband", "WandbHyperband", "tune.schedulers.wandb_hyperband"),
])
def test_a_class_pickled_at_its_old_path_unpickles(old, name, new):
    """An experiment written before the registries names these paths in tuner.pkl (tune/moved.py)."""
    import importlib

    from tune import moved

    moved.install()
    cls = getattr(importlib.import_module(new), name)
    # The pickle stream of a class as the old code wrote it: module path, then class name.
    stream = pickle.dumps(cls, protocol=0).replace(new.encode(), old.encode())  # protocol 0: names as plain lines
    assert old.encode() in stream and pickle.loads(stream) is cls


def test_the_searcher_settings_pickled_under_their_old_name_unpickle():
    settings = SearcherConfig(seed=3)
    stream = pickle.dumps(settings, protocol=0).replace(b"SearcherConfig", b"Searcher")
    assert pickle.loads(stream) == settings
