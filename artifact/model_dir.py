"""The exported model folder (MODEL_DIR) that ``results/export.py`` writes and predict/serve read.

Layout (format_version 1)::

    model.onnx             float32 NCHW input "images" (dynamic batch), output "logits" (batch, classes)
    model.torchscript.pt   the same network for torch users (torch.jit.load)
    model.json             everything needed to use it without this project (see results/export.py)
    MODEL_CARD.md          config, data, metrics, versions, how it was searched

Readers (predict, serve) use only model.json and model.onnx, with json, numpy, Pillow and onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact.preprocess import Preprocessing

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
CARD_FILE = "MODEL_CARD.md"
INPUT_NAME = "images"
OUTPUT_NAME = "logits"


class ModelDirError(ValueError):
    """A model folder that cannot be used; the message is one line naming the folder and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """A validated model folder."""

    folder: Path
    meta: dict[str, Any]
    """model.json as read."""
    preprocessing: Preprocessing
    class_names: list[str]
    """Name of each output index."""

    @property
    def onnx_path(self) -> Path:
        return self.folder / ONNX_FILE


def load_model_dir(folder: Path) -> ModelSpec:
    """Read and check MODEL_DIR; any problem is one :class:`ModelDirError` line."""
    folder = Path(folder)
    redo = "re-export it with python results/export.py"
    if not folder.is_dir():
        raise ModelDirError(f"model folder {folder} does not exist or is not a directory")
    path = folder / MODEL_JSON
    if not path.is_file():
        raise ModelDirError(f"{folder}: no {MODEL_JSON}, so not a folder written by results/export.py ({redo})")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelDirError(f"{path}: unreadable JSON ({type(error).__name__}); {redo}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {version!r} is not supported (this code reads "
                            f"format_version {FORMAT_VERSION}); {redo}")
    missing = [name for name in (ONNX_FILE,) if not (folder / name).is_file()]
    if missing:
        raise ModelDirError(f"{folder}: missing {', '.join(missing)} (an incomplete export); {redo}")
    try:
        preprocessing = Preprocessing.from_spec(meta["input"])
        classes = sorted(meta["classes"], key=lambda c: int(c["index"]))
        names = [str(c["name"]) for c in classes]
        if [int(c["index"]) for c in classes] != list(range(len(classes))) or not classes:
            raise ValueError("class indices must be 0..N-1")
        if meta["onnx"]["input"] != INPUT_NAME or meta["onnx"]["output"] != OUTPUT_NAME:
            raise ValueError(f"ONNX tensors must be {INPUT_NAME!r} -> {OUTPUT_NAME!r}")
    except (KeyError, TypeError, ValueError) as error:
        detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise ModelDirError(f"{path}: malformed ({detail}); {redo}") from None
    return ModelSpec(folder, meta, preprocessing, names)
