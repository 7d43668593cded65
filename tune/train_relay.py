"""A multi-worker trial's reports, relayed from its Ray Train run to Tune with a pointer checkpoint per epoch.

Ray's ``TuneReportCallback`` hands Train's reports to Tune as bare metrics (Train's checkpoint only as a
``checkpoint_path`` value). Tune saves its experiment state (what ``--resume`` reads) at once only after it
registers a checkpoint of its own; otherwise at most every ~10 s. A driver killed in between lost the rows reported
since, and a trial started and finished inside that window was missing from the saved state (found by the crash
matrix, tests/tune/test_crash_matrix.py). So the trial's own thread reports each epoch to Tune with a *pointer
checkpoint*: a folder holding only that epoch's ``metrics.json``, Train's checkpoint path among them (a few hundred
bytes; the weights stay where Ray Train wrote them). Tune registers it like a 1-worker trial's checkpoint and saves
its state at once; tune/trial_checkpoints.py aligns pointers before a resume like any checkpoint. A restored trial
ignores the pointer: its new Ray Train run starts from the newest whole Train checkpoint of the trial's earlier runs
(tune/trial_checkpoints.py train_start).
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

import ray.tune
from ray.train import Checkpoint, UserCallback
from ray.train.torch import TorchTrainer
from ray.util.queue import Empty, Queue

from train.checkpoint import METRICS_FILE
from train.metrics import REPLAYED, REPORTED_AGAIN
from tune.trial_checkpoints import TRAIN_CHECKPOINT, earlier_rows

POLL_S = 0.5
"""How often the trial checks whether its TorchTrainer ended while no report arrives (seconds)."""


class RelayReports(UserCallback):
    """Runs in the Train run's controller actor: puts rank 0's report of each epoch on a queue the trial reads."""

    def __init__(self) -> None:
        # One report in flight: the controller waits here until the trial took the previous one (as
        # TuneReportCallback does), so Tune sees epochs in order and never more than one behind.
        self.reports: Queue = Queue(maxsize=1, actor_options={"num_cpus": 0})

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Optional[Checkpoint]) -> None:
        report = dict(metrics[0])
        if checkpoint is not None:
            report[TRAIN_CHECKPOINT] = checkpoint.path
        self.reports.put(report)


def fit_reporting(trainer: TorchTrainer, relay: RelayReports, start: Optional[str] = None,
                  tags: Optional[dict[str, Any]] = None) -> None:
    """Run ``trainer`` in a thread and report each epoch to Tune from this one (the trial's); raise what fit raised.
    ``start``: the checkpoint the run starts from (tune/trial_checkpoints.py train_start): the epoch it holds, which
    the loop reports again first (train/loop.py), points at it, so a trial stopped right after has its checkpoint.

    A trial Tune starts over (no checkpoint of its own in the saved state: killed before its first pointer was
    saved, or stopped after it but before the stop was saved) gets a new result.json from Tune, while its Train run
    goes on from ``start``: the epochs before ``start``'s are reported again first (its history.json; ``tags``
    added as the workers add them), so no row of a trained epoch is lost.

    Every report is on the queue before ``fit()`` returns (the controller runs callbacks before it ends the run),
    so one drain after the thread ended takes the last ones.
    """
    failure: list[BaseException] = []

    def report(metrics: dict[str, Any]) -> None:
        if metrics.get(REPORTED_AGAIN) and metrics.get(TRAIN_CHECKPOINT) is None:
            metrics = {**metrics, TRAIN_CHECKPOINT: start}
        _report(metrics)

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as error:  # re-raised in the trial's thread below
            failure.append(error)

    if start is not None and ray.tune.get_checkpoint() is None:
        for row in earlier_rows(start):
            _report({**row, **(tags or {}), REPORTED_AGAIN: True, REPLAYED: True, TRAIN_CHECKPOINT: start})
    thread = threading.Thread(target=fit, name="torch-trainer-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            report(relay.reports.get(timeout=POLL_S))
        except Empty:
            continue
    while not relay.reports.empty():
        report(relay.reports.get_nowait())
    if failure:
        raise failure[0]


def _report(report: dict[str, Any]) -> None:
    if report.get(TRAIN_CHECKPOINT) is None:  # no checkpoint this epoch (or none to point at)
        ray.tune.report(report)
        return
    with tempfile.TemporaryDirectory(prefix="train-pointer-") as folder:
        (Path(folder) / METRICS_FILE).write_text(json.dumps(report, indent=1))
        # Tune copies the folder to the trial's storage before report returns; the temp folder can go after.
        ray.tune.report(report, checkpoint=Checkpoint.from_directory(folder))
