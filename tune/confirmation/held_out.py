"""A confirmation run's test accuracy: its last checkpoint on the data set's own test split (the same split and
class mapping as results/evaluate.py), computed by the search's driver once the stage's runs have finished."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from tune.experiment import storage


def _accuracy(folder: Path) -> Optional[float]:
    import torch

    from train.checkpoint import read_checkpoint
    from train.config import parse
    from train.data.prepared import load_test
    from train.model import build_model, input_normalization

    raw, state = read_checkpoint(folder)
    cfg = parse(raw, source=str(folder))
    model = build_model(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    model.eval()
    data, classes = load_test(cfg.data)
    if list(classes) != list(state["class_names"]) or not len(data.labels):
        return None
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(model))
    right = 0
    with torch.no_grad():
        for start in range(0, len(data.labels), 256):
            pixels = torch.from_numpy(np.array(data.images[start:start + 256]))  # a copy: the cache is read-only
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
            right += int((model(x).argmax(1).numpy() == np.asarray(data.labels[start:start + 256])).sum())
    return right / len(data.labels)


def held_out_accuracy(checkpoint: str) -> Optional[float]:
    """Accuracy of the checkpoint at ``checkpoint`` (a path or URI) on its data set's test split; None where the
    data set has no test split here (a format without one, or its files absent) or the checkpoint is unreadable."""
    from train.config import ConfigError
    from train.data import DataError

    with tempfile.TemporaryDirectory(prefix="signsearch-confirm-") as scratch:
        try:
            return _accuracy(storage.local_copy(checkpoint, Path(scratch)))
        except (DataError, ConfigError, OSError):
            return None
