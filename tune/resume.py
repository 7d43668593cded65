"""Continuing a search with ``--resume``: what may change, what must not, and what adds up.

- A folder whose search state Tune never wrote (a search stopped within seconds of its start) is
  refused with one line that says how to start it afresh.
- The search continues as it was started (``<experiment>/search.yaml``): ``--set`` overrides that
  would change it are refused, except raising ``budget.num_samples`` (more trials for a finished or
  unfinished search). Overrides that change nothing (the original command line again) are accepted.
- The data set must be the one the search started on (its fingerprint, kept in ``run.json``).
- ``wall_s`` adds up over every session of the search (``run.json``, updated while one runs).
- The sample budget: Tune restores its search algorithm's sample count and budget from the experiment, and
  ``Tuner.restore`` takes no new ``TuneConfig``. :class:`ExtendableSearch` (Tune's ``SearchGenerator``) takes a
  larger budget from :func:`raise_budget` when it is restored, so ``--resume`` with a higher
  ``budget.num_samples`` continues a finished search with more trials. (The scheduler's state, which Tune does
  not save either, is each scheduler's own: tune/schedulers/.)
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional

from ray.tune.search import SearchGenerator

from infra.ray_compat import count_restored_trials, raise_sample_budget
from train.config import ConfigError
from train.data import DataError
from tune.experiment.layout import SEARCH_FILE
from tune.experiment.records import RunRecord
from tune.experiment.storage import Experiment, experiments, is_uri, normalise
from tune.space import SearchFile, load_search_file


def continue_search(experiment: Experiment, overrides: list[str]) -> tuple[SearchFile, str]:
    """The search saved in ``experiment``, with a raised budget.num_samples if one is given;
    (search, where it was read from). One ConfigError line for anything else."""
    if not has_saved_state(experiment):
        raise ConfigError(f"--resume {experiment.uri}: no search state was saved there (the search stopped "
                          f"within seconds of its start), so there is nothing to continue; start it afresh: "
                          f"python tune/run_search.py --config {experiment.child(SEARCH_FILE)}")
    source = experiment.child(SEARCH_FILE)
    with _local_copy(experiment, SEARCH_FILE) as path:
        saved = load_search_file(path)
        wanted = load_search_file(path, overrides) if overrides else saved
    changed = _changed_keys(saved.model_dump(mode="json"), wanted.model_dump(mode="json"))
    others = [key for key in changed if key != "budget.num_samples"]
    if others:
        raise ConfigError(f"--resume: {', '.join(others)} would change the search being continued; only "
                          f"budget.num_samples can be raised (start a new search to change anything else)")
    if wanted.budget.num_samples < saved.budget.num_samples:
        raise ConfigError(f"--resume: budget.num_samples can only be raised (the search has "
                          f"{saved.budget.num_samples}, got {wanted.budget.num_samples})")
    if changed:
        experiment.write_text(SEARCH_FILE, wanted.dump())
        print(f"resume: budget.num_samples raised from {saved.budget.num_samples} to "
              f"{wanted.budget.num_samples}", flush=True)
    return wanted, source


def find_experiment(storage: str, search: SearchFile, resume: str) -> Experiment:
    """For --resume: the given experiment folder, or ("latest") the newest of this experiment."""
    if resume != "latest":
        experiment = Experiment.at(resume)
        if not experiment.has(SEARCH_FILE):
            raise ConfigError(f"--resume {resume}: not an experiment folder (no {SEARCH_FILE} inside)")
        return experiment
    earlier = experiments(storage, f"{search.experiment}-", SEARCH_FILE)
    if not earlier:
        raise ConfigError(f"--resume: no earlier '{search.experiment}' experiment under {normalise(storage)}")
    return earlier[-1]


def has_saved_state(experiment: Experiment) -> bool:
    """Whether Tune saved a search state there that Tuner.restore can continue: its tuner.pkl (written
    when the Tuner is built) and an experiment state (written once the search loop runs)."""
    from ray import tune
    from ray.tune import ExperimentAnalysis

    if not tune.Tuner.can_restore(experiment.uri):
        return False
    try:
        ExperimentAnalysis(experiment.uri)
    except (ValueError, OSError):  # no experiment_state-*.json yet, or one cut off while written
        return False
    return True


def check_same_data(record: Optional[RunRecord], fingerprint: str, experiment: Experiment) -> None:
    if record is not None and record.data_fingerprint != fingerprint:
        raise DataError(f"--resume {experiment.uri}: the training data changed since the search started "
                        f"(fingerprint {record.data_fingerprint[:12]} then, {fingerprint[:12]} now), so its "
                        f"trials would continue on other data; restore the data or start a new search")


@contextmanager
def _local_copy(experiment: Experiment, filename: str) -> Iterator[str]:
    """A local path holding the experiment's file (itself, for a local experiment)."""
    if not is_uri(experiment.root):
        yield experiment.child(filename)
        return
    with tempfile.TemporaryDirectory(prefix="signsearch-resume-") as folder:
        local = Path(folder) / filename
        local.write_text(experiment.read_text(filename))
        yield str(local)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [changed for key in keys
                for changed in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


class ExtendableSearch(SearchGenerator):
    """Tune's SearchGenerator (a Searcher and its sample budget) whose budget a resume can raise."""

    raised_total: ClassVar[Optional[int]] = None
    """Set by :func:`raise_budget` before ``Tuner.restore(...).fit()``; read when the saved state is
    loaded (Tune unpickles this object from the experiment, so the new budget cannot be passed in)."""

    restored_trials: ClassVar[int] = 0
    """Trials in the experiment state being restored (set with :func:`raise_budget`): the sample count restored
    with them is never below it (infra/ray_compat.py count_restored_trials)."""

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        count_restored_trials(self, ExtendableSearch.restored_trials)
        total = ExtendableSearch.raised_total
        if total is not None:
            raise_sample_budget(self, total)


def raise_budget(num_samples: Optional[int], restored_trials: int = 0) -> None:
    """The budget a search restored in this process gets (None: the saved one), and how many trials its saved
    state holds."""
    ExtendableSearch.raised_total = num_samples
    ExtendableSearch.restored_trials = restored_trials
