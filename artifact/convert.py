"""The checkpoint as torch, then ONNX and TorchScript: the model rebuilt with timm's exportable layers, and the
two exporters (see results/export.py for why torch.export's ONNX exporter and these layer settings)."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Optional

from results.exporter.source import ExportError
from results.model_dir import INPUT_NAME, OUTPUT_NAME

OPSET = 18
"""ONNX opset: >= 14 for native HardSwish; 18 is what torch's exporter targets natively and onnxruntime >= 1.14 runs."""


def load_for_export(checkpoint: Path, data_root: Optional[str]):
    """(config, model in eval mode built with timm's exportable layers, checkpoint state)."""
    from results.evaluate import read_checkpoint
    from train.config import ConfigError, parse
    from train.checkpoint import CONFIG_FILE

    try:
        raw, state = read_checkpoint(checkpoint)
    except ConfigError as error:
        raise ExportError(str(error)) from None
    if data_root:
        raw["data"]["root"] = str(Path(data_root).expanduser().absolute())
    cfg = parse(raw, source=str(checkpoint / CONFIG_FILE))
    model = build_exportable(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    return cfg, model.eval(), state


def build_exportable(model_cfg, num_classes: int):
    """The trial's network (train.model.build_model) with timm's exportable layers, in eval mode; the weights are
    the builder's (random unless model_cfg.pretrained)."""
    from train.model import SMALL_CNN, build_model

    layers = contextlib.nullcontext()
    if model_cfg.name != SMALL_CNN:
        import timm.layers

        layers = timm.layers.set_layer_config(scriptable=True, exportable=True, no_jit=True)
    with layers:
        return build_model(model_cfg, num_classes=num_classes).eval()


def export_onnx(model, example, path: Path) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about deprecated internals; failures still raise
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
                          dynamic_shapes={"x": {0: batch}})


def export_torchscript(model, example, path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        # TracerWarnings flag branches on the spatial size (small_cnn's pooling guard), fixed by the export's
        # input size; the batch axis stays free, which the parity check confirms on another batch size.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.jit.trace(model, example).save(str(path))
