"""Export a search's best checkpoint (or any checkpoint) for deployment.

    python results/export.py runs/smoke-<time> --out models/smoke           # the search's best trial
    python results/export.py runs/smoke-<time>/trial_x/checkpoint_000003 --out models/x [--data-root DIR]

Writes MODEL_DIR (see results/model_dir.py): ``model.onnx`` (opset 18, native HardSwish, dynamic batch
axis), ``model.torchscript.pt``, ``model.json`` (input size, RGB/NCHW, scale 1/255, mean/std, the resize
training used, the sign-box convention, classes with ids and names, metrics, source) and
``MODEL_CARD.md``. Before publishing, onnxruntime, TorchScript and torch must agree on real test
images of the data set (max |logit difference| within --atol, same top-1 unless the torch margin is
inside the tolerance); the folder is written under a temp name and renamed, so it is complete or
absent. The last line printed is MODEL_DIR.

ONNX comes from torch's ``torch.export``-based exporter (``dynamo=True``), torch's default since 2.9:
the TorchScript-based one is deprecated (a DeprecationWarning on every call) and gets no fixes. timm
models are built with ``set_layer_config(exportable=True, scriptable=True, no_jit=True)``, which picks
plain PyTorch activation modules (``nn.Hardswish``, exported as ONNX ``HardSwish``, native since
opset 14) instead of custom-autograd ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from results.model_dir import (CARD_FILE, FORMAT_VERSION, INPUT_NAME, MODEL_JSON, ONNX_FILE, OUTPUT_NAME,
                               TORCHSCRIPT_FILE, load_model_dir)
from results.exporter.source import ExportError, Source, locate

OPSET = 18
"""ONNX opset: >= 14 for native HardSwish; 18 is what torch's exporter targets natively and onnxruntime >= 1.14 runs."""
CHECK_IMAGES = 256
"""Real test images the parity check runs through torch, TorchScript and onnxruntime."""
ATOL = 1e-3
"""Largest |logit difference| accepted between torch and the exported models (float32 differs ~1e-5)."""


class ParityError(RuntimeError):
    """The exported model disagrees with torch, or an exporter failed: nothing is published, exit 1."""


def load_for_export(checkpoint: Path, data_root: Optional[str]):
    """(config, model in eval mode built with timm's exportable layers, checkpoint state)."""
    from results.evaluate import read_checkpoint
    from train.config import ConfigError, parse
    from train.loop import CONFIG_FILE
    from train.model import SMALL_CNN, build_model

    try:
        raw, state = read_checkpoint(checkpoint)
    except ConfigError as error:
        raise ExportError(str(error)) from None
    if data_root:
        raw["data"]["root"] = str(Path(data_root).expanduser().absolute())
    cfg = parse(raw, source=str(checkpoint / CONFIG_FILE))
    layers = contextlib.nullcontext()
    if cfg.model.name != SMALL_CNN:
        import timm.layers

        layers = timm.layers.set_layer_config(scriptable=True, exportable=True, no_jit=True)
    with layers:
        model = build_model(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    return cfg, model.eval(), state


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


def check_parity(model, folder: Path, batch: np.ndarray, atol: float) -> dict[str, Any]:
    """Logits of torch, TorchScript and onnxruntime on one real normalised batch; raises ParityError."""
    import torch

    from results.runtime import OnnxClassifier

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


def class_table(cfg, class_names: list[str]) -> tuple[list[dict[str, Any]], bool, str]:
    """([{index, id, name}], whether training cropped to sign boxes, the layout). Ids: GTSRB ClassId, else the
    class folder's name."""
    from train.prepared import resolve_source
    from train.data import read_records

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

    from results.exporter.model_card import model_card, model_json
    from results.preprocess import Preprocessing
    from results.runtime import OnnxClassifier
    from train.files import building
    from train.model import input_normalization
    from train.prepared import load_test

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment folder (exports its best trial) or checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="MODEL_DIR to write (replaced if it holds an export)")
    parser.add_argument("--data-root", help="the data set's root on this machine, when it moved since training")
    parser.add_argument("--check-images", type=int, default=CHECK_IMAGES, help="real test images in the parity check")
    parser.add_argument("--atol", type=float, default=ATOL, help="largest accepted |logit difference| vs torch")
    args = parser.parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError

    out = args.out.expanduser().absolute()
    try:
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MODEL_JSON).is_file())):
            raise ExportError(f"--out {out} exists and is not an exported model folder; refusing to replace it "
                              f"(give a new folder)")
        source = locate(args.path)
        meta = export(source, out, args.data_root, max(1, args.check_images), args.atol)
    except (ExportError, ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ParityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    parity, test = meta["metrics"]["parity"], meta["metrics"]["test"]["onnxruntime"]
    print(f"exported {source.checkpoint} ({meta['model']['name']}, {len(meta['classes'])} classes, "
          f"{meta['input']['width']}x{meta['input']['height']} px; format_version {FORMAT_VERSION}, "
          f"opset {OPSET}) in {meta['export_seconds']:.1f} s")
    for name in ("onnxruntime", "torchscript"):
        print(f"parity {name} vs torch on {parity['images']} real test images: max |logit diff| "
              f"{parity[name]['max_abs_logit_diff']:.2e} (tolerance {parity['atol']:g}), top-1 agreement "
              f"{parity[name]['top1_agreement']:.1%}")
    print(f"test accuracy (onnxruntime, {test['images']} images): {test['accuracy']:.4f}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
