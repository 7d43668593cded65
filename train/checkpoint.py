"""A training checkpoint: the files in a checkpoint folder, and writing and reading them.

A folder holds ``state.pt`` (model, optimizer, LR schedule, loss scaler, the epoch it ends, the class names
and the data fingerprint), ``trial_config.json`` (the whole trial config, as :func:`train.config.parse`
reads it) and ``metrics.json`` (what the loop reported for that epoch: a resumed run that has nothing left to
train reports it again, and a summary pairs a checkpoint with its own epoch's numbers). Ray Tune and Ray Train
copy such folders to storage; evaluation and export read them back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from train.config import TrialConfig

CHECKPOINT_FILE = "state.pt"
CONFIG_FILE = "trial_config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
"""Every epoch's reported numbers up to the checkpoint's, oldest first: a run restored where Tune kept none of the
trial's rows reports them again (tune/train_relay.py)."""


def save(folder: Path, state: dict[str, Any], cfg: TrialConfig, metrics: dict[str, Any],
         history: Optional[list[dict[str, Any]]] = None) -> None:
    """Write ``state``, the config that produced it, the epoch's reported ``metrics`` and the ``history`` of every
    epoch's (``metrics`` last) into ``folder``."""
    torch.save(state, folder / CHECKPOINT_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2))
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    (folder / HISTORY_FILE).write_text(json.dumps(history if history is not None else [metrics]))


def read_metrics(folder: Path) -> Optional[dict[str, Any]]:
    """The metrics the checkpoint's epoch reported; None for a checkpoint written before they were kept, or one
    whose file is cut off."""
    try:
        return json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_history(folder: Path) -> list[dict[str, Any]]:
    """The checkpoint's :data:`HISTORY_FILE` rows; its metrics alone for a checkpoint written before histories."""
    try:
        return json.loads((Path(folder) / HISTORY_FILE).read_text())
    except (OSError, ValueError):
        metrics = read_metrics(folder)
        return [metrics] if metrics is not None else []


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


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trial config it was trained with, as a dict; the saved state: model weights, class names, epoch).

    How a checkpoint is read outside training (results/ evaluates and exports through it), for a model in eval
    mode without pretrained weights: any problem is one ConfigError line.
    """
    from train.config import ConfigError

    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(f"{folder}: checkpoint without {CONFIG_FILE} (not written by this project's trainer?)")
    raw = json.loads((folder / CONFIG_FILE).read_text())
    raw["model"]["pretrained"] = False  # the checkpoint holds the weights: no hub or weights file needed
    try:
        state = load_state(folder)
        missing = {"class_names", "model"} - set(state)
        if missing:
            raise KeyError(f"no {', '.join(sorted(missing))}")
    except Exception as error:  # torch raises EOFError, RuntimeError, UnpicklingError... for a cut-off file
        size = (folder / CHECKPOINT_FILE).stat().st_size if (folder / CHECKPOINT_FILE).is_file() else 0
        reason = " ".join(str(error).split())[:200]
        raise ConfigError(f"{folder / CHECKPOINT_FILE}: not a readable checkpoint ({size} bytes; truncated or "
                          f"not a torch.save file: {type(error).__name__}: {reason})") from None
    return raw, state
