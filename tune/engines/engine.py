"""What the registry knows of an engine: the Optuna sampler it asks, and the Tune searcher that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tune.distributions import Param
    from tune.engines.study import StudySearcher
    from tune.space import SearcherConfig, SearchFile


def study_searcher(search: "SearchFile", **study: Any) -> "StudySearcher":
    """The project's Optuna searcher over ``search`` (tune/engines/study.py); ``study``: where its study lives."""
    from tune.engines.study import StudySearcher

    return StudySearcher(search.space, search.searcher, metric=search.metric, mode=search.mode,
                         epochs=search.trial.epochs, objectives=search.objectives, **study)


@dataclass(frozen=True)
class Engine:
    """One ``searcher.algorithm``."""

    name: str
    sampler: Callable[["SearcherConfig", dict[str, "Param"], int, int], Any]
    """(settings, space, concurrency, seed) -> the Optuna sampler the study asks; a resumed search passes the seed
    plus the trials asked before (it must not replay the draws it made before the interruption)."""
    searcher: Callable[..., "StudySearcher"] = study_searcher
    """(search, storage_url=, study_name=, concurrency=) -> the Tune searcher; by default Optuna proposes."""
