"""A training checkpoint: the files in a checkpoint folder, and writing and reading them.

A folder holds ``state.pt`` (model, optimizer, LR schedule, loss scaler, the epoch it ends, the class names
and the data fingerprint) and ``trial_config.json`` (the whole trial config, as :func:`train.config.parse`
reads it). Ray Tune and Ray Train copy such folders to storage; evaluation and export read them back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from train.config import TrialConfig

CHECKPOINT_FILE = "state.pt"
CONFIG_FILE = "trial_config.json"


def save(folder: Path, state: dict[str, Any], cfg: TrialConfig) -> None:
    """Write ``state`` and the config that produced it into ``folder``."""
    torch.save(state, folder / CHECKPOINT_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2))


def load_state(folder: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``state.pt`` of ``folder``, its tensors on ``device``."""
    return torch.load(Path(folder) / CHECKPOINT_FILE, map_location=device, weights_only=False)


def load_scaler(scaler: torch.amp.GradScaler, saved: dict[str, Any]) -> None:
    """Restore the loss scaler where the checkpoint's precision and this run's agree.

    A run in bfloat16 (Ampere and newer) has a disabled scaler whose state is empty; one in float16 (T4, V100)
    scales losses. A checkpoint moves between them when a retried or resumed trial lands on the other kind of
    GPU: an empty state into an enabled scaler would fail ("the source state dict is empty"), and a float16
    state means nothing to a disabled one. Either way the scaler starts fresh, as it does at epoch 0; it
    re-calibrates within a few steps.
    """
    if saved and scaler.is_enabled():
        scaler.load_state_dict(saved)
