"""The search driver's hold points (infra/hold.py): test-only pauses at the moments Tune changes a search's state.

A Tune callback sees a trial sampled, started, its results, its checkpoints, its end and its retry; a Tune stopper
is asked right after each event is handled and before Tune saves its experiment state, which is the one moment a
callback cannot reach: a checkpoint registered (and the one before it deleted) but not yet in the saved state.
Unset, every method returns at once.
"""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar, Optional

from ray.tune import Callback
from ray.tune.stopper import Stopper

from infra import hold


def _where(trial: Any) -> dict[str, Any]:
    # trial.path: the trial's folder on storage (Trial is a Tune DeveloperAPI); its parent is the experiment.
    return {"trial_id": trial.trial_id, "experiment_dir": posixpath.dirname(trial.path)}


def _epoch(trial: Any) -> int:
    return int((trial.last_result or {}).get("epoch") or 0)


class HoldPoints(Callback, Stopper):
    """Pauses the driver at the driver points of infra/hold.py (always installed; a no-op unless asked for).

    The same object is the run's callback and (in a CombinedStopper) its stopper, but ``Tuner.restore`` unpickles
    the two as separate copies: what the callback side tells the stopper side goes through the class (one search
    per driver process), never through the instance.
    """

    _registered: ClassVar[Optional[tuple[Any, int]]] = None
    """(trial, epoch) of a checkpoint Tune is registering in this step; the stopper holds on it."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._started = 0

    def __getstate__(self) -> dict[str, Any]:
        return {}  # pickled with the run config: a resumed session counts its own trials

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        for trial in trials:
            if trial.trial_id not in self._seen and trial.status == "PENDING":
                self._seen.add(trial.trial_id)
                hold.at("pending", len(self._seen), lambda trial=trial: _where(trial))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._seen.add(trial.trial_id)
        self._started += 1
        hold.at("started", self._started, lambda: _where(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        hold.at("result", int(result.get("epoch") or 0), lambda: _where(trial))

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        # Tune registers the checkpoint right after this call: held in stop_all, asked after the event.
        HoldPoints._registered = (trial, _epoch(trial))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        hold.at("complete", _epoch(trial), lambda: _where(trial))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        hold.at("recover", _epoch(trial), lambda: _where(trial))

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # never stops a trial

    def stop_all(self) -> bool:
        if HoldPoints._registered is not None:
            trial, epoch = HoldPoints._registered
            HoldPoints._registered = None
            hold.at("checkpoint_registered", epoch, lambda: _where(trial))
        return False


class ConfirmHolds(Callback):
    """The confirmation stage's hold point: ``confirm_started`` when the n-th confirmation run of this session
    starts (its trial folder is under the experiment's ``confirm/``)."""

    def __init__(self) -> None:
        self._started = 0

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a resumed session counts its own runs

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started += 1
        hold.at("confirm_started", self._started, lambda: _where(trial))
