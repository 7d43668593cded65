"""Hold points: a test-only pause at a known moment of training, so fault tests never race.

    SIGNSEARCH_HOLD="checkpoint:<epoch>:<dir>[:<nth>]"    (training processes)
    SIGNSEARCH_HOLD="interrupt:<count>:<dir>"              (the search driver)
    SIGNSEARCH_HOLD="serve:<step>:<dir>"                   (results/serve.py)

``checkpoint``: rank 0 of a run pauses right after its epoch-``<epoch>`` checkpoint (1-based, the reported
``epoch``) is *committed*, writes ``<dir>/held.json`` and waits until ``<dir>/release`` exists. With
``<nth>`` (default 1) only the nth rank 0 of the whole test to get there pauses (each claims a
number by creating ``<dir>/arrival-<n>`` exclusively); the others go on. Unset, this is a no-op.

``held.json`` (written atomically): ``point``, ``epoch``, ``trial_id`` (the Tune trial, or None),
``run`` (the Ray Train run name, or None), ``node_id`` (Ray node), ``pid``, ``checkpoint`` (its
path on storage), ``experiment_dir`` (the Tune experiment, or None).

Several holds can be given, separated by commas (the driver and its trials read the same variable).

``interrupt``: the search driver pauses right after handling its ``<count>``-th Ctrl-C (inside the
signal handler, after asking Tune to stop), so a test can send the next one at a known moment.

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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from train.files import write_atomic

ENV = "SIGNSEARCH_HOLD"
POINTS = ("checkpoint", "interrupt", "serve")
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


def after_checkpoint(session: Any, epoch: int) -> None:
    """Called by the loop after each epoch's report; pauses here when $SIGNSEARCH_HOLD names this moment."""
    for wanted in specs():
        if wanted.point != "checkpoint" or wanted.epoch != epoch or session.world_rank != 0:
            continue
        if _claim(wanted) == wanted.nth:
            _pause(wanted, {"epoch": epoch, "node_id": _node_id(), **_commit(session)})


def after_interrupt(count: int) -> None:
    """Called by the search driver after handling its count-th Ctrl-C."""
    for wanted in specs():
        if wanted.point == "interrupt" and wanted.epoch == count:
            _pause(wanted, {"epoch": count})


def at_serve_step(step: int) -> None:
    """Called by results/serve.py at step 1: its Ray is up, nothing of Serve is started yet."""
    for wanted in specs():
        if wanted.point == "serve" and wanted.epoch == step:
            _pause(wanted, {"epoch": step})


def _pause(wanted: HoldSpec, where: dict[str, Any]) -> None:
    marker = {"point": wanted.point, "pid": os.getpid(), **where}
    wanted.folder.mkdir(parents=True, exist_ok=True)
    write_atomic(wanted.folder / MARKER, json.dumps(marker, indent=1))
    print(f"hold: paused at {wanted.point} ({marker}); waiting for {wanted.folder / RELEASE}", flush=True)
    while not (wanted.folder / RELEASE).exists():
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


def _commit_train(train: Any) -> dict[str, Any]:
    from ray.train import CheckpointConsistencyMode

    mine = train.get_checkpoint()  # after report: the persisted copy of what this rank reported
    committed = train.get_all_reported_checkpoints(consistency_mode=CheckpointConsistencyMode.COMMITTED)
    if mine is None or mine.path not in {reported.checkpoint.path for reported in committed}:
        raise RuntimeError(f"hold: checkpoint {mine} is not among the committed ones {committed}")
    run = train.get_context().get_experiment_name()
    # Multi-worker trials name their TorchTrainer run train_<Tune trial id> (tune/trial.py).
    return {"trial_id": run.removeprefix("train_") if run.startswith("train_") else None, "run": run,
            "checkpoint": mine.path, "experiment_dir": None}


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
        except Exception:  # noqa: BLE001 - no state yet, or one being copied: read it again
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
