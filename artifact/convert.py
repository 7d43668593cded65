"""A built network as ONNX and TorchScript: the two exporters of the model folder (results/export.py, for why
torch.export's ONNX exporter) and of the search's latency objective (tune/latency.py). The caller builds the
network with timm's exportable layers (train/model.py build_exportable)."""

from __future__ import annotations

import warnings
from pathlib import Path

from artifact.model_dir import INPUT_NAME, OUTPUT_NAME

OPSET = 18
"""ONNX opset: >= 14 for native HardSwish; 18 is what torch's exporter targets natively and onnxruntime >= 1.14 runs."""


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
