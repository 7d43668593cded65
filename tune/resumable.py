"""The two pieces of a search that Tune does not carry across ``Tuner.restore``: ASHA's rungs and the
sample budget.

- **ASHA**: Tune saves no scheduler state with an experiment and restores the scheduler as it was
  built, with empty rungs, so a resumed search would judge its next trials against nothing and let
  every one of them through. :class:`ResumableASHA` replays every restored trial's reported rows
  (its ``result.json``) into its bracket when Tune adds the trial back, recording the value each
  trial reached at each rung, as if the search had never stopped.
- **Budget**: Tune restores its search algorithm's sample count and budget from the experiment, and
  ``Tuner.restore`` takes no new ``TuneConfig``. :class:`ExtendableSearch` (Tune's
  ``SearchGenerator``) takes a larger budget from :func:`raise_budget` when it is restored, so
  ``--resume`` with a higher ``budget.num_samples`` continues a finished search with more trials.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, ClassVar, Iterator, Optional

from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import SearchGenerator

from infra.ray_compat import count_restored_trials, raise_sample_budget, replay_into_asha


class ResumableASHA(ASHAScheduler):
    """ASHA whose rungs survive ``--resume`` (see the module docstring)."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        if trial.has_reported_at_least_once:  # only a restored trial has results when it is added
            self._replay(trial)

    def _replay(self, trial: Any) -> None:
        replay_into_asha(self, trial, result_rows(trial))


def result_rows(trial: Any) -> Iterator[dict[str, Any]]:
    """The trial's result.json rows, from where the restored experiment lives now (a moved one too)."""
    # trial.path / trial.storage: where Tune.restore has pointed the trial (Trial is a DeveloperAPI).
    fs = trial.storage.storage_filesystem
    try:
        with fs.open_input_stream(posixpath.join(trial.path, "result.json")) as stream:
            text = stream.read().decode()
    except OSError:
        return
    for line in text.splitlines():
        try:
            yield json.loads(line)
        except ValueError:  # a line cut off by the kill that ended the earlier session
            continue


class ExtendableSearch(SearchGenerator):
    """Tune's SearchGenerator (a Searcher and its sample budget) whose budget a resume can raise."""

    raised_total: ClassVar[Optional[int]] = None
    """Set by :func:`raise_budget` before ``Tuner.restore(...).fit()``; read when the saved state is
    loaded (Tune unpickles this object from the experiment, so the new budget cannot be passed in)."""

    restored_trials: ClassVar[int] = 0
    """Trials in the experiment state being restored (set with :func:`raise_budget`): the sample count restored
    with them is never below it (train/ray_compat.py count_restored_trials)."""

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
