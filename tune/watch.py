"""Two things the search driver watches while Tune runs: trials' error texts, and a search that stalls.

**Error files.** Tune writes a failed trial's error text (``error.txt``: every failure with its traceback)
into the trial's *staging* folder under Ray's temp directory, which is gone when the machine is cleaned,
and syncs it to the experiment only with a later checkpoint, which a failed trial never writes.
:class:`ErrorFiles` copies it into the trial's folder in the experiment after every failure, retried or
final; the console line and summary.json point there (:func:`error_file`).

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

from tune.storage import Experiment

ERROR_FILE = "error.txt"
"""Name of a failed trial's error text in its trial folder (Tune's own name for it)."""
STALL_FILE = "stalled.txt"
"""The stall guard's one line, in the experiment folder: a resumed search's guard is unpickled by Tune from
tuner.pkl, out of the driver's reach, so it leaves its verdict where the driver reads it after fit()."""


def trial_dirname(trial_id: str) -> str:
    """A trial's folder in the experiment (Tune's ``trial_dirname_creator``)."""
    return f"trial_{trial_id}"


def error_file(experiment_uri: str, trial_id: str) -> str:
    """Where a failed trial's error text is kept in the experiment (a path, or a URI for remote storage)."""
    return posixpath.join(experiment_uri, trial_dirname(trial_id), ERROR_FILE)


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
        Experiment.at(self.experiment_uri).write_text(posixpath.join(trial_dirname(trial.trial_id), ERROR_FILE), text)


class SearchStalled(Exception):
    """Trials waited for resources with nothing running; the message is one line."""


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

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # never stops a single trial

    def stop_all(self) -> bool:
        return self.reason is not None


def _available() -> str:
    import ray

    free = ray.available_resources()
    return ", ".join(f"{free.get(key, 0.0):g} {key}" for key in ("CPU", "GPU")) if free else "nothing"
