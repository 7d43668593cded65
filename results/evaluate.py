"""Evaluate a search's best checkpoint (or any checkpoint) on the held-out test split.

    python results/evaluate.py runs/smoke-<time>                 # the best trial of that search
    python results/evaluate.py runs/smoke-<time>/trial_x/checkpoint_000003 --split val [--out DIR]

Writes ``evaluation-<split>.json`` (accuracy, per-class accuracy sorted worst first, confusion matrix,
most frequent confusions) and ``confusion-<split>.png`` into the checkpoint folder, or into ``--out``
(created if missing), prints the per-class table and, last, the JSON's path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def has_checkpoint(location: str) -> bool:
    """Whether ``location`` (a path or URI) is a checkpoint folder of this project's trainer."""
    from train.checkpoint import CHECKPOINT_FILE
    from tune.experiment.storage import is_file, join

    return is_file(join(location, CHECKPOINT_FILE))


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trial config it was trained with, as a dict; the saved state: model weights, class names, epoch).

    The one place results/ reads a checkpoint (evaluate and export both do), through the trainer's own
    reader (train/checkpoint.py). Any problem is one ConfigError line.
    """
    from train.checkpoint import CHECKPOINT_FILE, CONFIG_FILE, load_state
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


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder, given one, or an experiment folder (its summary's best checkpoint)."""
    from train.config import ConfigError
    from train.checkpoint import CHECKPOINT_FILE
    from tune.experiment.layout import SUMMARY_FILE
    from tune.experiment.records import Summary

    if has_checkpoint(str(path)):
        return path
    if not (path / SUMMARY_FILE).is_file():
        raise ConfigError(f"{path}: neither a checkpoint folder (no {CHECKPOINT_FILE}) nor an experiment folder "
                          f"with a {SUMMARY_FILE} naming one")
    best = Summary.read(str(path)).best
    if best is None or not best.checkpoint:
        raise ConfigError(f"{path / SUMMARY_FILE}: no best trial with a checkpoint (no trial finished an epoch)")
    checkpoint = path.resolve() / best.checkpoint  # relative to the experiment: a moved copy still evaluates
    if not has_checkpoint(str(checkpoint)):
        raise ConfigError(f"{path}: the best trial's checkpoint {checkpoint} is missing "
                          f"({SUMMARY_FILE} names {best.checkpoint})")
    return checkpoint


def load_checkpoint(folder: Path):
    """(config, model in eval mode with the checkpoint's weights, class names)."""
    from train.config import parse
    from train.checkpoint import CONFIG_FILE
    from train.model import build_model

    raw, state = read_checkpoint(folder)
    cfg = parse(raw, source=str(folder / CONFIG_FILE))
    model = build_model(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    return cfg, model.eval(), state["class_names"]


def predict(model, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class indices for uint8 (N, H, W, 3) images, normalised as the model was trained."""
    import torch

    from train.model import input_normalization

    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(model))
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            pixels = torch.from_numpy(np.array(images[start:start + batch]))  # a copy: the cache is a read-only memmap
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
            out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def report(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = [{"index": i, "class": name, "images": int(confusion[i].sum()),
                  "accuracy": float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None}
                 for i, name in enumerate(class_names)]
    # Worst first; classes without test images last (nothing to rank them by).
    per_class.sort(key=lambda row: (row["accuracy"] is None, row["accuracy"] or 0.0, row["index"]))
    off_diagonal = [(int(confusion[i, j]), class_names[i], class_names[j])
                    for i in range(classes) for j in range(classes) if i != j and confusion[i, j]]
    return {
        "images": int(len(labels)),
        "accuracy": float((labels == predicted).mean()) if len(labels) else None,
        "per_class_accuracy": per_class,
        "top_confusions": [{"true": t, "predicted": p, "count": n}
                           for n, t, p in sorted(off_diagonal, reverse=True)[:10]],
        "confusion_matrix": confusion.tolist(),
        "class_names": class_names,
    }


def evaluate(checkpoint: Path, split: str) -> dict[str, Any]:
    from train.prepared import load_test, prepare
    from train.data import DataError

    cfg, model, class_names = load_checkpoint(checkpoint)
    if split == "test":
        data, data_classes = load_test(cfg.data)
    else:
        prepared = prepare(cfg.data)
        data, data_classes = prepared.val, prepared.class_names
    if list(data_classes) != list(class_names):
        raise DataError(f"{cfg.data.root}: the {split} split's classes differ from the checkpoint's "
                        f"({len(data_classes)} vs {len(class_names)})")
    result = report(np.asarray(data.labels), predict(model, data.images), class_names)
    return {"checkpoint": str(checkpoint), "split": split, "data_root": cfg.data.root, **result}


def write_outputs(result: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """evaluation-<split>.json and confusion-<split>.png in ``folder`` (created if missing)."""
    from results.report.confusion import plot_confusion
    from train.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    split = result["split"]
    picture = plot_confusion(result, folder / f"confusion-{split}.png",
                             title=f"{Path(result['checkpoint']).parent.name} on the {split} split")
    out = folder / f"evaluation-{split}.json"
    write_atomic(out, json.dumps(result, indent=2))
    return out, picture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment folder (uses its best trial) or checkpoint folder")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--out", type=Path, help="folder for the JSON and PNG (default: the checkpoint folder)")
    args = parser.parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError

    try:
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise ConfigError(f"--out {args.out}: exists and is not a folder")
        checkpoint = resolve_checkpoint(args.path)
        result = evaluate(checkpoint, args.split)
        try:
            out, picture = write_outputs(result, args.out or checkpoint)
        except OSError as error:
            raise ConfigError(f"{error.filename or args.out or checkpoint}: cannot write the evaluation "
                              f"({error.strerror or error})") from None
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.split} accuracy {result['accuracy']:.4f} on {result['images']} images ({checkpoint})")
    print("per-class accuracy, worst first:")
    for row in result["per_class_accuracy"]:
        accuracy = "   n/a" if row["accuracy"] is None else f"{row['accuracy']:6.3f}"
        print(f"  {accuracy}  {row['images']:5d} images  {row['index']:3d} {row['class']}")
    if result["top_confusions"]:
        print("most frequent confusions (true -> predicted):")
    for row in result["top_confusions"][:5]:
        print(f"  {row['count']:4d} x {row['true']} -> {row['predicted']}")
    print(picture)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
