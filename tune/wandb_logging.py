"""W&B from the search's driver: one W&B run per trial, all through one W&B service process.

Ray's ``WandbLoggerCallback`` starts a logging actor per trial, each with its own W&B service process
(20 of 36 s of an 8-trial search on 2 cores went there), and hands the API key to those actors through
``runtime_env`` env vars, which Ray writes into its logs. This Tune callback logs every trial from the
driver instead: ``wandb.init(reinit="create_new")`` opens one run per trial in this process, and all of
them share the process's single W&B service (wandb-core). ``WANDB_API_KEY`` is taken out of the driver's
environment before Ray starts (:func:`take_key`) and handed to W&B in its settings: every process Ray starts
(GCS, raylet, dashboard, trial workers) and W&B's own service inherit the driver's environment, and would all
hold the key otherwise. Nothing holding it is pickled into the experiment or passed to Ray. Without it, W&B
uses ``wandb login``'s credentials (~/.netrc) as usual.

Runs: id = trial id, group = the experiment folder's name, config = the trial's whole config, one
history row per epoch (step = epoch). Without ``WANDB_API_KEY`` (and no ``WANDB_MODE``) runs are
written offline under ``<experiment>/wandb/`` for ``wandb sync``. W&B's own console output is off.

W&B calls block for a while (run start ~0.1-1 s), so they happen on one background thread: Tune's
driver loop, which also schedules trials, never waits on W&B. The experiment's end waits for every
run to be finished and flushed.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any, Optional

from ray.tune import Callback

log = logging.getLogger("tune.wandb_logging")

# Tune's bookkeeping in each result: not metrics.
_NOT_LOGGED = {"done", "should_checkpoint", "timestamp", "pid", "first_step_at", "time_since_restore",
               "iterations_since_restore", "timesteps_since_restore"}


KEY_ENV = "WANDB_API_KEY"
_key: Optional[str] = None
"""The key :func:`take_key` took out of the environment: in this process's memory only."""


def take_key() -> None:
    """Move ``$WANDB_API_KEY`` from this process's environment into memory. Call before Ray starts (and before
    any W&B call): the processes started afterwards inherit an environment without it."""
    global _key
    key = os.environ.pop(KEY_ENV, None)
    if key:
        _key = key


def api_key() -> Optional[str]:
    """The W&B key: the one taken from the environment, else ``$WANDB_API_KEY`` (None: W&B's own login)."""
    return _key or os.environ.get(KEY_ENV) or None


def wandb_mode() -> str:
    """``$WANDB_MODE`` when set, else online with a key and offline without one."""
    return os.environ.get("WANDB_MODE") or ("online" if api_key() else "offline")


class WandbTrialLogger(Callback):
    """A W&B run per Tune trial, logged from the driver; see the module docstring."""

    def __init__(self, *, project: str, entity: Optional[str], group: str, directory: Path,
                 time_attr: str = "epoch", engine: Optional[str] = None, job_type: Optional[str] = None):
        self.engine = engine
        self.job_type = job_type
        """W&B's job type of the runs, also one of their tags: "confirm" for the confirmation stage's (none for the
        search's own trials)."""
        """The search's engine (tune.engine_label.engine_name): in every run's config and tags, so W&B's UI
        groups and compares searches by it."""
        self.project = project
        self.entity = entity
        self.group = group
        self.directory = Path(directory)
        """Where W&B writes (its ``wandb/`` folder goes inside): the experiment's local folder."""
        self.time_attr = time_attr
        self._jobs: Optional[queue.Queue] = None
        self._thread: Optional[threading.Thread] = None

    # -- Tune hooks (Tune's driver thread): queue the work ----------------------------------------
    def setup(self, **info: Any) -> None:
        self._start()

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        # Called again when a failed trial is retried: its run stays open, so the call is idempotent.
        self._put("start", trial.trial_id, copy.deepcopy(trial.config))  # read on the W&B thread

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info: Any) -> None:
        self._put("log", trial.trial_id, _metrics(result))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._put("finish", trial.trial_id, 0)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._put("finish", trial.trial_id, 1)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Finish every open run and wait until W&B has written them (also on an interrupted search)."""
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = self._jobs = None

    def _start(self) -> None:
        if self._thread is None:
            self._jobs = queue.Queue()
            self._thread = threading.Thread(target=self._work, args=(self._jobs,), name="wandb-trials",
                                            daemon=True)
            self._thread.start()

    def _put(self, kind: str, trial_id: str, payload: Any) -> None:
        self._start()
        self._jobs.put((kind, trial_id, payload))

    # -- the W&B thread ---------------------------------------------------------------------------
    def _work(self, jobs: queue.Queue) -> None:
        import wandb

        runs: dict[str, Any] = {}
        last_step: dict[str, int] = {}
        while True:
            job = jobs.get()
            if job is None:
                break
            kind, trial_id, payload = job
            try:
                if kind == "start" and trial_id not in runs:
                    runs[trial_id] = self._init(wandb, trial_id, payload)
                elif kind == "log" and trial_id in runs:
                    step = int(payload.get(self.time_attr, last_step.get(trial_id, 0) + 1))
                    if step > last_step.get(trial_id, 0):  # a retried trial reports its last epochs again
                        runs[trial_id].log(payload, step=step)
                        last_step[trial_id] = step
                elif kind == "finish" and trial_id in runs:
                    runs.pop(trial_id).finish(exit_code=payload)
            except Exception as error:  # W&B trouble must never stop the search
                log.warning("W&B: %s for trial %s failed: %s", kind, trial_id, error)
        for run in runs.values():  # trials still running when the search ended (interrupted)
            try:
                run.finish()
            except Exception as error:
                log.warning("W&B: finishing a run failed: %s", error)
        try:
            wandb.teardown()  # stops the service process once everything is flushed
        except Exception as error:
            log.warning("W&B: teardown failed: %s", error)

    def _init(self, wandb, trial_id: str, config: dict):
        self.directory.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            silent=True,            # no per-run banners or summary blocks on the search's console
            console="off",          # the driver's output is not a trial's output
            x_disable_stats=True,   # system metrics would sample the driver, not the trial
            save_code=False, disable_git=True, x_save_requirements=False,
            api_key=api_key())      # from memory: the environment no longer holds it (take_key)
        engine = getattr(self, "engine", None)  # a search pickled before engines were named has none
        job_type = getattr(self, "job_type", None)
        if engine:
            config = {**config, "engine": engine}
        return wandb.init(project=self.project, entity=self.entity, group=self.group, id=trial_id,
                          name=trial_id, config=config, dir=str(self.directory), mode=wandb_mode(),
                          tags=[tag for tag in (engine, job_type) if tag] or None, job_type=job_type,
                          reinit="create_new", resume="allow", settings=settings)

    # -- what Ray pickles (tuner.pkl holds the callbacks) --------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_jobs": None, "_thread": None}


def _metrics(result: dict) -> dict[str, Any]:
    """The numeric, per-epoch values of a Tune result (not Tune's bookkeeping, not the config)."""
    out = {}
    for key, value in result.items():
        if key not in _NOT_LOGGED and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out
