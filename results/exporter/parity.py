"""The check before publishing: torch, TorchScript and onnxruntime agree on real test images."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from artifact.model_dir import TORCHSCRIPT_FILE, load_model_dir

ATOL = 1e-3
"""Largest |logit difference| accepted between torch and the exported models (float32 differs ~1e-5)."""


class ParityError(RuntimeError):
    """The exported model disagrees with torch, or an exporter failed: nothing is published, exit 1."""


def check_parity(model, folder: Path, batch: np.ndarray, atol: float) -> dict[str, Any]:
    """Logits of torch, TorchScript and onnxruntime on one real normalised batch; raises ParityError."""
    import torch

    from artifact.runtime import OnnxClassifier

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        expected = model(torch.from_numpy(batch)).numpy()
        scripted = torch.jit.load(str(folder / TORCHSCRIPT_FILE))(torch.from_numpy(batch)).numpy()
    onnx_logits = OnnxClassifier(load_model_dir(folder)).logits(batch)
    ranked = np.sort(expected, axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if expected.shape[1] > 1 else np.full(len(batch), np.inf)
    result: dict[str, Any] = {"images": int(len(batch)), "atol": atol}
    for name, logits in (("onnxruntime", onnx_logits), ("torchscript", scripted)):
        diff = float(np.abs(logits - expected).max())
        agree = logits.argmax(1) == expected.argmax(1)
        result[name] = {"max_abs_logit_diff": diff, "top1_agreement": float(agree.mean())}
        if diff > atol or (~agree & (margin > 2 * atol)).any():
            raise ParityError(f"{name} and torch disagree on {len(batch)} real test images: max |logit diff| "
                              f"{diff:.3g} (tolerance {atol:g}), top-1 agreement {agree.mean():.1%}; nothing written")
    return result
