"""What the training loop reports: the one definition of the metric names and report keys.

The search checks its ``metric`` against :data:`REPORTED_METRICS`, the summary keeps these numbers per trial,
the console and the report show them; all read the names from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class Epoch:
    """Metrics of one epoch, as reported (the same numbers on every rank)."""

    epoch: int
    """0-based here; reported 1-based (see :meth:`as_metrics`)."""
    train_loss: float
    """Mean training loss (label smoothing included) over the epoch, all workers."""
    val_loss: float
    """Mean cross-entropy on the validation split."""
    val_acc: float
    """Top-1 accuracy on the validation split, 0..1."""
    lr: float
    """Learning rate at the end of the epoch."""
    images_per_s: float
    """Training images per second over all workers (augmentation, forward, backward, step)."""
    epoch_s: float
    """Wall seconds of the epoch's training pass."""

    def as_metrics(self) -> dict[str, Any]:
        # Tune counts reports as training_iteration; `epoch` is 1-based here so the two agree.
        return {**self.__dict__, "epoch": self.epoch + 1}


REPORTED_METRICS = tuple(field.name for field in dataclasses.fields(Epoch) if field.name != "epoch")
"""Numbers a search can optimise. ``epoch`` is reported too, but it is ASHA's time axis, not something to optimise."""

REPORTED_AGAIN = "reported_again"
REPLAYED = "replayed"
"""Also set on a row reported again from a checkpoint's history (tune/train_relay.py): an epoch the trial trained
past, whose early-stopping decision was made when it was first reported (schedulers record it, decide nothing)."""
"""Key (true) of a report that repeats a checkpoint's final epoch: a run resumed from its final checkpoint has
nothing to train and reports that epoch's numbers again, so the trial ends with them."""

TRAIN_PLACEMENT_GROUP = "train_placement_group"
"""Report key: the hex id of a multi-worker trial's Ray Train placement group (train/session.py reports it,
tune/watch.py releases the group when Tune ends the trial)."""
