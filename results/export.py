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
import sys
from pathlib import Path

from results.exporter.convert import OPSET
from results.exporter.parity import ATOL, ParityError
from results.exporter.source import ExportError, locate
from results.exporter.write import CHECK_IMAGES, export
from results.model_dir import FORMAT_VERSION, MODEL_JSON


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
