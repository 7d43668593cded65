"""What the search driver watches while Tune runs: trials' error texts, Ray Train's placement groups of trials
that ended, and a search that stalls.

**Error files.** Tune writes a failed trial's error text (``error.txt``: every failure with its traceback)
into the trial's *staging* folder under Ray's temp directory, which is gone when the machine is cleaned,
and syncs it to the experiment only with a later checkpoint, which a failed trial never writes.
:class:`ErrorFiles` copies it into the trial's folder in the experiment after every failure, retried or
final; the console line and summary.json point there (:func:`error_file`).

**Placement groups.** A multi-worker trial's TorchTrainer reserves its workers' resources in a placement group
that Ray Train V2 creates from its controller actor, so Ray ties its lifetime to the search's job. When Tune
ends such a trial (ASHA, ``max_t``) it stops the trial's process; the controller dies with it, and the group
would be removed only by Ray Train's ``PlacementGroupCleaner``, which asks the State API (the dashboard) and
fails where several Ray instances share a machine or the dashboard is off (ray-project/ray#54305). The next
trial then waits forever for those resources. :class:`ReleaseTrainResources` removes the group of every
trial that Tune ends or retries, from the driver that owns it, with Ray's public placement-group API.

**Stalls.** A search must never sit with trials left, none running and nothing said: a trial whose
resources Ray cannot give (held by something else, or by nothing the cluster can grow) would otherwise
wait forever. :class:`StallGuard` is a Tune callback (it sees every trial at every step) and a Tune
stopper (Tune asks it at every step whether to stop everything): after ``timeout_s`` with trials pending
and none running it stops the search and keeps the one line that says why (``reason``).
"""

from __future__ import annotations

import posixpath
import time
from typing import Any, Optional

from ray.tune import Callback
from ray.tune.stopper import Stopper

from train.metrics import TRAIN_PLACEMENT_GROUP
from tune.experiment import layout
from tune.experiment.layout import STALL_FILE
from tune.experiment.storage import Experiment


def error_file(experiment_uri: str, trial_id: str) -> str:
    """Where a failed trial's error text is kept in the experiment (a path, or a URI for remote storage)."""
    return posixpath.join(experiment_uri, layout.error_file(trial_id))


class ErrorFiles(Callback):
    """Copies Tune's error text of a failed trial into the trial's folder in the experiment."""

    def __init__(self, experiment_uri: str):
        self.experiment_uri = experiment_uri

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._keep(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._keep(trial)

    def _keep(self, trial: Any) -> None:
        staged = trial.error_file  # Tune's copy, on this (the driver's) machine
        if not staged:
            return
        with open(staged, encoding="utf-8", errors="replace") as handle:
            text = handle.read()  # every failure of this trial so far
        Experiment.at(self.experiment_uri).write_text(layout.error_file(trial.trial_id), text)


class ReleaseTrainResources(Callback):
    """Removes a multi-worker trial's Ray Train placement group when Tune ends or retries the trial.

    The group's id comes with the trial's reports (``TRAIN_PLACEMENT_GROUP``, train/session.py). Removing a
    group also ends the worker actors in it. A trial whose TorchTrainer finished on its own removed the group
    already; removing it again is harmless.
    """

    def __init__(self) -> None:
        self._groups: dict[str, str] = {}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if TRAIN_PLACEMENT_GROUP in result:
            self._groups[trial.trial_id] = result[TRAIN_PLACEMENT_GROUP]

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._release(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._release(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._release(trial)

    def _release(self, trial: Any) -> None:
        group_id = self._groups.pop(trial.trial_id, None)
        if group_id is None:
            return
        import ray
        from ray.util.placement_group import PlacementGroup, remove_placement_group

        group = PlacementGroup(ray.PlacementGroupID.from_hex(group_id))
        if ray.util.placement_group_table(group).get("state") != "REMOVED":
            remove_placement_group(group)


class SearchStalled(Exception):
    """Trials waited for resources with nothing running; the message is one line."""


_STALLED: dict[str, str] = {}
"""Experiment -> the stall guard's line, in the driver process. The guard is the run's callback and its stopper,
but ``Tuner.restore`` unpickles the two as separate copies, so the callback side (which sees the trials) tells the
stopper side through here, not through the instance: on a resumed search the guard would otherwise never stop."""


def clear_stall(experiment_uri: str) -> None:
    """Forget a stall the driver has handled (tune/search.py reads the line from the experiment's file)."""
    _STALLED.pop(experiment_uri, None)


def stall_reason(experiment: Experiment) -> Optional[str]:
    """The stall guard's line if it stopped this session of the search; the file is consumed, so a resumed search
    starts clean."""
    clear_stall(experiment.uri)
    if not experiment.has(STALL_FILE):
        return None
    reason = experiment.read_text(STALL_FILE).strip()
    experiment.remove_file(STALL_FILE)
    return reason


class StallGuard(Callback, Stopper):
    """Stops the search after ``timeout_s`` seconds in which trials were pending and none ran."""

    def __init__(self, experiment_uri: str, timeout_s: float, resources_text: str):
        """``resources_text``: what one trial asks for, for the message (e.g. "2 workers x 0.5 CPU")."""
        self.experiment_uri = experiment_uri
        self.timeout_s = timeout_s
        self.resources_text = resources_text
        self.reason: Optional[str] = None
        self._idle_since: Optional[float] = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the run config (tuner.pkl): a resumed search starts its own clock.
        return {**self.__dict__, "reason": None, "_idle_since": None}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        pending = [trial for trial in trials if trial.status == "PENDING"]
        running = any(trial.status == "RUNNING" for trial in trials)
        if running or not pending:
            self._idle_since = None
            return
        now = time.monotonic()
        self._idle_since = self._idle_since or now
        if self.reason is None and now - self._idle_since >= self.timeout_s:
            self.reason = (f"{len(pending)} trial(s) waited {self.timeout_s:g} s for resources with no trial running "
                           f"(each needs {self.resources_text}; Ray has {_available()} free): the search stopped; "
                           f"free the resources or lower resources.*, then --resume")
            Experiment.at(self.experiment_uri).write_text(STALL_FILE, self.reason)
            _STALLED[self.experiment_uri] = self.reason

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # never stops a single trial

    def stop_all(self) -> bool:
        return self.experiment_uri in _STALLED


def _available() -> str:
    import ray

    if not ray.is_initialized():
        return "unknown"
    free = ray.available_resources()
    return ", ".join(f"{free.get(key, 0.0):g} {key}" for key in ("CPU", "GPU")) if free else "nothing"
