"""Writing MODEL_DIR: the checkpoint converted, checked for parity on real test images, measured with
onnxruntime on the test split, described (model.json, MODEL_CARD.md), and published whole or not at all."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from artifact.convert import OPSET, export_onnx, export_torchscript
from artifact.model_dir import CARD_FILE, MODEL_JSON, ONNX_FILE, TORCHSCRIPT_FILE, load_model_dir
from results.exporter.model_card import model_card, model_json
from results.exporter.parity import ParityError, check_parity
from results.exporter.source import ExportError, Source, load_for_export

CHECK_IMAGES = 256
"""Real test images the parity check runs through torch, TorchScript and onnxruntime."""


def class_table(cfg, class_names: list[str]) -> tuple[list[dict[str, Any]], bool, str]:
    """([{index, id, name}], whether training cropped to sign boxes, the layout). Ids: GTSRB ClassId, else the
    class folder's name."""
    from train.data import read_records
    from train.data.prepared import resolve_source

    fmt, root = resolve_source(cfg.data)
    records = read_records(fmt, root, "train")
    if records.class_names != class_names:
        raise ExportError(f"{root}: the data set's classes differ from the checkpoint's ({len(records.class_names)} "
                          f"vs {len(class_names)}); pass --data-root with the data set the model was trained on")
    ids: dict[int, Any] = {}
    for path, label in zip(records.paths, records.labels.tolist()):
        ids.setdefault(label, int(path.parent.name) if path.parent.name.isdigit() else path.parent.name)
    classes = [{"index": i, "id": ids.get(i, name), "name": name} for i, name in enumerate(class_names)]
    return classes, bool(cfg.data.roi_crop and records.rois is not None), fmt


def export(source: Source, out: Path, data_root: Optional[str], check_images: int, atol: float) -> dict[str, Any]:
    import torch

    from artifact.preprocess import Preprocessing
    from artifact.runtime import OnnxClassifier
    from infra.files import building
    from train.data.prepared import load_test
    from train.model import input_normalization

    cfg, model, state = load_for_export(source.checkpoint, data_root)
    test, test_classes = load_test(cfg.data)
    if list(test_classes) != list(state["class_names"]):
        raise ExportError(f"{cfg.data.root}: the test split's classes differ from the checkpoint's "
                          f"({len(test_classes)} vs {len(state['class_names'])})")
    classes, cropped, fmt = class_table(cfg, list(state["class_names"]))
    mean, std = input_normalization(model)
    size = cfg.data.image_size
    pre = Preprocessing(size, size, mean, std, "bilinear", jpeg_draft=not cropped)
    pick = np.unique(np.linspace(0, len(test) - 1, min(check_images, len(test))).astype(int))
    batch = pre.normalize(np.asarray(test.images[pick]))
    with building(out, "export") as temp:
        example = torch.from_numpy(batch[:2] if len(batch) >= 2 else np.repeat(batch, 2, axis=0))
        started = time.monotonic()
        for name, write in ((ONNX_FILE, export_onnx), (TORCHSCRIPT_FILE, export_torchscript)):
            try:
                write(model, example, temp / name)
            except Exception as error:  # the exporters raise many types; say which file and why, keep nothing
                raise ParityError(f"writing {name} failed ({type(error).__name__}: "
                                  f"{' '.join(str(error).split())[:300]}); nothing written") from error
        meta = model_json(cfg, state, source, classes, pre, cropped, fmt, opset=OPSET,
                          parameters=sum(p.numel() for p in model.parameters()))
        (temp / MODEL_JSON).write_text(json.dumps(meta, indent=2))
        meta["metrics"]["parity"] = check_parity(model, temp, batch, atol)
        runner = OnnxClassifier(load_model_dir(temp))
        predicted = np.concatenate([runner.logits(pre.normalize(np.asarray(test.images[i:i + 256]))).argmax(1)
                                    for i in range(0, len(test), 256)])
        meta["metrics"]["test"]["onnxruntime"] = {"accuracy": float((predicted == test.labels).mean()),
                                                  "images": int(len(test))}
        meta["export_seconds"] = round(time.monotonic() - started, 2)
        (temp / MODEL_JSON).write_text(json.dumps(meta, indent=2))
        (temp / CARD_FILE).write_text(model_card(meta, source))
    return meta
