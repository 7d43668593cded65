"""train.checkpoint: a checkpoint's loss-scaler state across the precisions of different GPUs."""

from __future__ import annotations

import pytest


def test_a_checkpoint_moves_between_bf16_and_fp16_runs():
    """A bf16 run's scaler is disabled and saves an empty state; a retried or resumed trial on a pre-Ampere
    GPU trains in fp16 with an enabled scaler. Either direction starts the scaler fresh instead of failing."""
    import torch

    from train.checkpoint import load_scaler

    bf16_state = torch.amp.GradScaler("cpu", enabled=False).state_dict()
    assert bf16_state == {}
    fp16 = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError, match="empty"):  # what loading it as is did
        fp16.load_state_dict(bf16_state)
    load_scaler(fp16, bf16_state)
    assert fp16.get_scale() == 1024.0
    saved = torch.amp.GradScaler("cpu", enabled=True, init_scale=64.0).state_dict()
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    load_scaler(disabled, saved)  # an fp16 checkpoint on a bf16 GPU: nothing to scale
    assert not disabled.is_enabled()
    load_scaler(fp16, saved)
    assert fp16.state_dict()["scale"] == 64.0
