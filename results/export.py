"""Export a search's best checkpoint (or any checkpoint) for deployment.

    python results/export.py runs/smoke-<time> --out models/smoke           # the search's best trial
    python results/export.py runs/smoke_pareto-<time> --out models/fast --pick fastest --min-val-acc 0.9
    python results/export.py runs/smoke-<time>/trial_x/checkpoint_000003 --out models/x [--data-root DIR]

Writes MODEL_DIR (see artifact/model_dir.py): ``model.onnx`` (opset 18, native HardSwish, dynamic batch
axis), ``model.torchscript.pt``, ``model.json`` (input size, RGB/NCHW, scale 1/255, mean/std, the resize
training used, the sign-box convention, classes with ids and names, metrics, source) and
``MODEL_CARD.md``. Before publishing, onnxruntime, TorchScript and torch must agree on real test
images of the data set (max |logit difference| within --atol, same top-1 unless the torch margin is
inside the tolerance); the folder is written under a temp name and renamed, so it is complete or
absent. The last line printed is MODEL_DIR.

An existing --out is replaced only when it holds nothing but an earlier export's four files: anything else in
it (your notes, a sub-folder) makes the export refuse with one line, so it never deletes a file it did not
write. --force writes the four files into such a folder anyway, one by one, leaving everything else there.

--pick best|fastest|balanced with constraints (--max-latency-ms, --min-val-acc) chooses from a multi-objective
search's Pareto front (results/exporter/pick.py); nothing on the front meeting them is one line naming the
closest point, exit 2. model.json (``latency``) and MODEL_CARD.md then record the trial's measured latency_ms
and the settings it was measured with; ``results/predict.py MODEL_DIR --benchmark`` re-measures it.

A model from a search that was interrupted (summary.json ``interrupted``) is exported with a warning line on
stderr, and model.json (``source.search.search_interrupted``, ``trial_epochs`` of ``epochs``) and MODEL_CARD.md
say so: its trial may have trained fewer epochs than the search meant.

ONNX comes from torch's ``torch.export``-based exporter (``dynamo=True``), torch's default since 2.9:
the TorchScript-based one is deprecated (a DeprecationWarning on every call) and gets no fixes. timm
models are built with ``set_layer_config(exportable=True, scriptable=True, no_jit=True)``, which picks
plain PyTorch activation modules (``nn.Hardswish``, exported as ONNX ``HardSwish``, native since
opset 14) instead of custom-autograd ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from artifact.convert import OPSET
from artifact.model_dir import CARD_FILE, FORMAT_VERSION, MODEL_JSON, ONNX_FILE, TORCHSCRIPT_FILE
from results.exporter.parity import ATOL, ParityError
from results.exporter.pick import PICKS, constraints, picked
from results.exporter.source import ExportError, locate
from results.exporter.write import CHECK_IMAGES, export

EXPORT_FILES = (ONNX_FILE, TORCHSCRIPT_FILE, MODEL_JSON, CARD_FILE)
"""What the exporter writes into MODEL_DIR: the only files it may replace."""


def others_in(out: Path) -> list[str]:
    """Names in ``out`` the exporter did not write (sorted); ExportError when ``out`` is not a folder."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder; give a new folder")
    return sorted(entry.name for entry in out.iterdir() if entry.name not in EXPORT_FILES)


def export_beside(source, out: Path, *args) -> dict:
    """--force into a folder holding other files: build the export whole in a temp folder beside it, then move
    its files in one by one (each rename atomic), leaving the rest of the folder as it is."""
    from infra.files import temp_dir_beside

    staging = temp_dir_beside(out, "force")
    try:
        meta = export(source, staging / "model", *args)
        for name in EXPORT_FILES:
            os.replace(staging / "model" / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def interrupted_warning(source) -> str | None:
    """The warning line for a model whose search was interrupted, else None."""
    summary, trial = source.summary or {}, source.trial or {}
    if not summary.get("interrupted"):
        return None
    return (f"warning: {source.experiment} is an interrupted search: trial {trial.get('trial_id')} "
            f"({trial.get('status')}) trained {trial.get('epochs')} of {summary.get('epochs')} epochs; model.json and "
            f"MODEL_CARD.md record it (continue the search with --resume, then export again)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment folder (exports its best trial) or checkpoint folder")
    parser.add_argument("--out", type=Path, required=True,
                        help="MODEL_DIR to write (replaced if it holds an earlier export and nothing else)")
    parser.add_argument("--force", action="store_true",
                        help="write into an --out that holds other files too: the export's four files are replaced, "
                             "everything else is left there")
    parser.add_argument("--data-root", help="the data set's root on this machine, when it moved since training")
    parser.add_argument("--check-images", type=int, default=CHECK_IMAGES, help="real test images in the parity check")
    parser.add_argument("--atol", type=float, default=ATOL, help="largest accepted |logit difference| vs torch")
    parser.add_argument("--pick", choices=PICKS, help="which trial of the search's Pareto front to export: best "
                        "(accuracy), fastest (latency_ms), balanced (the front's knee); default: the best trial, or "
                        "with a confirmation stage the confirmed winner's median-seed run")
    parser.add_argument("--max-latency-ms", type=float, help="pick among front trials at most this slow")
    parser.add_argument("--min-val-acc", type=float, help="pick among front trials at least this accurate")
    args = parser.parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError

    out = args.out.expanduser().absolute()
    try:
        others = others_in(out)
        if others and not args.force:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise ExportError(f"--out {out} holds files the exporter did not write ({shown}); refusing to replace "
                              "it: give a new folder, or --force to write the export's files beside them")
        limits = constraints(args.max_latency_ms, args.min_val_acc)
        source = locate(args.path, confirmed_winner=not (args.pick or limits))  # --pick: the search's own trials
        if args.pick or limits:
            source = picked(source, args.path, args.pick or "best", limits)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in source.trial["metrics"].items()
                              if k in ("val_acc", "latency_ms") and v is not None)
            print(f"picked trial {source.trial['trial_id']} ({args.pick or 'best'}: {shown})", flush=True)
        warning = interrupted_warning(source)
        if warning:
            print(warning, file=sys.stderr, flush=True)
        settings = (args.data_root, max(1, args.check_images), args.atol)
        meta = export_beside(source, out, *settings) if others else export(source, out, *settings)
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
