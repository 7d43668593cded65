"""Hold points: a test-only pause at a known moment of a search's life, so fault tests never race.

    SIGNSEARCH_HOLD="<point>:<n>:<dir>[:<nth>]"      several separated by commas

The process that reaches ``<point>`` with number ``<n>`` (an epoch, a count, a step: see :data:`POINTS`; 0 matches
any) writes ``<dir>/held.json`` (atomically) and waits until ``<dir>/release`` exists; unset, this is a no-op.
With ``<nth>`` (default 1) only the nth arrival of the whole test pauses (each claims a number by creating
``<dir>/arrival-<n>`` exclusively); the others go on. A held process gives up after
``SIGNSEARCH_HOLD_TIMEOUT_S`` (default 600) seconds with one line and goes on, so a test runner killed mid-test
never leaves a search (and its Ray) waiting forever. The driver and its trials read the same variable.

``held.json``: ``point``, ``epoch`` (the number), ``pid``, and where it applies ``trial_id`` (the Tune trial),
``run`` (the Ray Train run name), ``node_id`` (Ray node), ``checkpoint`` (its path on storage),
``experiment_dir`` (the Tune experiment).

Training processes (rank 0 of a run; train/loop.py): ``epoch_start``, ``reported`` (the epoch's report returned,
its checkpoint not yet known to be committed), ``checkpoint`` (the checkpoint is *committed*, below).
The search driver (tune/hold_points.py, a Tune callback and stopper): ``pending`` (the n-th trial of this session
was sampled and waits for a process to start in; a 1-worker trial that takes over a finished trial's process at
once never waits), ``started`` (the n-th trial of this session started), ``result`` (a result of
epoch n reached the driver, before Tune records it), ``checkpoint_registered`` (Tune registered the epoch-n
checkpoint and deleted the one before; its experiment state is not saved yet), ``complete`` (a trial ended at
epoch n, finished or stopped by ASHA, not yet saved as such), ``recover`` (a failed trial is about to be retried),
``summary`` (the search ended; summary.json not written yet), ``interrupt`` (right after the n-th Ctrl-C or
SIGTERM was handled, inside the signal handler), ``confirm_started`` (the n-th confirmation run of this session
started: tune/confirmation/). results/serve.py: ``serve`` (step 1: its Ray is up, nothing of
Serve started).

"Committed" is what the resume after the fault the test injects will read, so the test can assert
the exact epoch training continues from:

- **Ray Train worker** (a TorchTrainer: ``train_model.py``, multi-worker trials): ``ray.train.report``
  returns once the checkpoint is uploaded and queued, but Train V2's controller registers it only
  when it next polls the workers (~every 2 s). ``ray.train.get_all_reported_checkpoints(COMMITTED)``
  blocks until the controller has registered it, which writes the run's checkpoint-manager snapshot
  to storage first: a TorchTrainer restarted with the same name (a retried trial, a re-run of
  ``train_model.py``) resumes from it.
- **Tune trial** (a 1-worker trial trains in the trial's own process): Tune reports synchronously,
  so ``ray.tune.report`` returns only after the driver has processed the result and the checkpoint
  and scheduled the next step; a retry of the trial (driver alive) restores it. A *driver* that is
  killed resumes from Tune's experiment state on storage, which Tune saves after the checkpoint is
  processed (the search forces a save per checkpoint) and copies to storage in the background; so
  the hold also waits until that state (read with Tune's own ``ExperimentAnalysis``) lists this
  checkpoint as the trial's latest.
- **Bare process** (``LocalSession``): the checkpoint is copied when ``report`` returns.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from infra.files import write_atomic

ENV = "SIGNSEARCH_HOLD"
TIMEOUT_ENV = "SIGNSEARCH_HOLD_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0
TRAINING_POINTS = ("epoch_start", "reported", "checkpoint")
DRIVER_POINTS = ("pending", "started", "result", "checkpoint_registered", "complete", "recover", "summary",
                 "interrupt", "confirm_started")
POINTS = (*TRAINING_POINTS, *DRIVER_POINTS, "serve")
MARKER = "held.json"
RELEASE = "release"
POLL_S = 0.05
"""How often a held process looks for the release file, and a Tune hold re-reads the state (x4)."""


@dataclass(frozen=True)
class HoldSpec:
    point: str
    epoch: int
    folder: Path
    nth: int = 1

    @classmethod
    def parse(cls, text: str) -> "HoldSpec":
        parts = text.split(":")
        if len(parts) not in (3, 4) or parts[0] not in POINTS or not parts[1].isdigit() \
                or (len(parts) == 4 and not parts[3].isdigit()):
            raise ValueError(f"${ENV}={text!r}: expected '<point>:<epoch>:<dir>[:<nth>]' "
                             f"with point one of {', '.join(POINTS)}")
        return cls(parts[0], int(parts[1]), Path(parts[2]), int(parts[3]) if len(parts) == 4 else 1)


def specs() -> list[HoldSpec]:
    return [HoldSpec.parse(text) for text in os.environ.get(ENV, "").split(",") if text]


def at(point: str, number: int, where: Callable[[], dict[str, Any]] = dict) -> None:
    """Pause here when $SIGNSEARCH_HOLD names ``point`` with ``number`` (or 0) and this is its nth arrival;
    ``where()`` adds to the marker (called only when pausing)."""
    for wanted in specs():
        if wanted.point != point or wanted.epoch not in (0, number):
            continue
        if _claim(wanted) == wanted.nth:
            _pause(wanted, {"epoch": number, **where()})


def in_training(point: str, session: Any, epoch: int) -> None:
    """A training point of rank 0 (train/loop.py); ``checkpoint`` first waits until the epoch's checkpoint is
    committed."""
    if session.world_rank != 0 or not specs():
        return
    if point == "checkpoint":
        at(point, epoch, lambda: {"node_id": _node_id(), **_commit(session)})
    else:
        at(point, epoch, lambda: {"node_id": _node_id(), **_identity(session)})


def after_checkpoint(session: Any, epoch: int) -> None:
    """Called by the loop after each epoch's report returned."""
    in_training("reported", session, epoch)
    in_training("checkpoint", session, epoch)


def after_interrupt(count: int) -> None:
    """Called by the search driver after handling its count-th Ctrl-C."""
    at("interrupt", count)


def at_serve_step(step: int) -> None:
    """Called by results/serve.py at step 1: its Ray is up, nothing of Serve is started yet."""
    at("serve", step)


def _timeout_s() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _pause(wanted: HoldSpec, where: dict[str, Any]) -> None:
    marker = {"point": wanted.point, "pid": os.getpid(), **where}
    wanted.folder.mkdir(parents=True, exist_ok=True)
    write_atomic(wanted.folder / MARKER, json.dumps(marker, indent=1))
    print(f"hold: paused at {wanted.point} ({marker}); waiting for {wanted.folder / RELEASE}", flush=True)
    deadline = time.monotonic() + _timeout_s()
    while not (wanted.folder / RELEASE).exists():
        if time.monotonic() > deadline:
            print(f"hold: nobody released {wanted.point} at {wanted.folder} within {_timeout_s():g} s "
                  f"(${TIMEOUT_ENV}); going on", flush=True)
            return
        time.sleep(POLL_S)


def release(folder: Path) -> None:
    """Let a held process go on (tests)."""
    (folder / RELEASE).touch()


def wait_held(folder: Path, timeout: float, alive=lambda: True) -> dict[str, Any]:
    """The marker of the held process, once written (tests). ``alive`` false stops waiting early."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            return json.loads((folder / MARKER).read_text())
        except (OSError, ValueError):  # not there yet (it is renamed into place whole)
            time.sleep(POLL_S)
    raise TimeoutError(f"no process held at {folder} within {timeout:.0f} s (or the run ended first)")


# -- what committed means per session ---------------------------------------------------------
def _commit(session: Any) -> dict[str, Any]:
    """Wait until the checkpoint just reported is committed; return where it lives."""
    api = getattr(session, "api", None)
    name = getattr(api, "__name__", "")
    if name == "ray.train":
        return _commit_train(api)
    if name == "ray.tune":
        return _commit_tune(api)
    return {"trial_id": None, "run": None, "checkpoint": str(getattr(session, "last_checkpoint", None)),
            "experiment_dir": None}


def _identity(session: Any) -> dict[str, Any]:
    """Which trial or run the session belongs to (no waiting)."""
    name = getattr(getattr(session, "api", None), "__name__", "")
    if name == "ray.train":
        return _train_run(session.api)
    if name == "ray.tune":
        return {"trial_id": session.api.get_context().get_trial_id(), "run": None}
    return {"trial_id": None, "run": None}


def _commit_train(train: Any) -> dict[str, Any]:
    from ray.train import CheckpointConsistencyMode

    mine = train.get_checkpoint()  # after report: the persisted copy of what this rank reported
    committed = train.get_all_reported_checkpoints(consistency_mode=CheckpointConsistencyMode.COMMITTED)
    if mine is None or mine.path not in {reported.checkpoint.path for reported in committed}:
        raise RuntimeError(f"hold: checkpoint {mine} is not among the committed ones {committed}")
    return {**_train_run(train), "checkpoint": mine.path, "experiment_dir": None}


def _train_run(train: Any) -> dict[str, Any]:
    """The Train run's name and, for a multi-worker trial's, the Tune trial's id: its runs are
    ``train_runs/train_<trial id>/attempt_<n>`` (tune/trial.py), so the run folder's parent names the trial."""
    context = train.get_context()
    # get_storage() is a DeveloperAPI of Ray Train: the one way a worker learns where its run lives.
    parent = posixpath.basename(posixpath.dirname(context.get_storage().experiment_fs_path.rstrip("/")))
    return {"trial_id": parent.removeprefix("train_") if parent.startswith("train_") else None,
            "run": context.get_experiment_name()}


def _commit_tune(tune: Any) -> dict[str, Any]:
    from ray.tune import ExperimentAnalysis

    mine = tune.get_checkpoint()  # after report: the persisted copy, in <experiment>/<trial>/
    trial_id = tune.get_context().get_trial_id()
    experiment = str(Path(mine.path).parent.parent)
    while True:
        try:
            trials = ExperimentAnalysis(experiment, storage_filesystem=mine.filesystem).trials
            saved = next((t.checkpoint for t in trials if t.trial_id == trial_id), None)
            if saved is not None and Path(saved.path).name == Path(mine.path).name:
                break
        except Exception:  # no state yet, or one being copied: read it again
            pass
        time.sleep(POLL_S * 4)
    return {"trial_id": trial_id, "run": None, "checkpoint": mine.path, "experiment_dir": experiment}


def _claim(wanted: HoldSpec) -> int:
    """This arrival's number (1-based), unique across every process of the test."""
    wanted.folder.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        try:
            os.close(os.open(wanted.folder / f"arrival-{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return number
        except FileExistsError:
            number += 1


def _node_id() -> Optional[str]:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
