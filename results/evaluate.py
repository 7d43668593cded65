"""Evaluate a search's best checkpoint (or any checkpoint) on the held-out test split.

    python results/evaluate.py runs/smoke-<time>                 # the best trial of that search
    python results/evaluate.py runs/smoke-<time>/trial_x/checkpoint_000003 --split val

Writes ``evaluation.json`` (accuracy, per-class accuracy, confusion matrix, most frequent
confusions) into the checkpoint folder, or ``--out``, and prints a short table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder, given one, or an experiment folder (its summary's best checkpoint)."""
    from train.config import ConfigError
    from train.loop import CHECKPOINT_FILE

    if (path / CHECKPOINT_FILE).is_file():
        return path
    summary = path / "summary.json"
    if summary.is_file():
        best = json.loads(summary.read_text())["best"]
        if best.get("checkpoint"):
            return resolve_checkpoint(Path(best["checkpoint"]))
    raise ConfigError(f"{path}: neither a checkpoint folder (no {CHECKPOINT_FILE}) "
                      "nor an experiment folder with a summary.json naming one")


def load_checkpoint(folder: Path):
    """(config, model in eval mode with the checkpoint's weights, class names)."""
    import torch

    from train.config import parse
    from train.loop import CHECKPOINT_FILE, CONFIG_FILE
    from train.model import build_model

    raw = json.loads((folder / CONFIG_FILE).read_text())
    raw["model"]["pretrained"] = False  # the checkpoint holds the weights: no hub or weights file needed
    cfg = parse(raw, source=str(folder / CONFIG_FILE))
    state = torch.load(folder / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
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
            pixels = torch.from_numpy(np.ascontiguousarray(images[start:start + batch]))
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
            out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def report(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    off_diagonal = [(int(confusion[i, j]), class_names[i], class_names[j])
                    for i in range(classes) for j in range(classes) if i != j and confusion[i, j]]
    return {
        "images": int(len(labels)),
        "accuracy": float((labels == predicted).mean()) if len(labels) else None,
        "per_class_accuracy": per_class,
        "top_confusions": [{"true": t, "predicted": p, "count": n} for n, t, p in sorted(off_diagonal, reverse=True)[:10]],
        "confusion_matrix": confusion.tolist(),
        "class_names": class_names,
    }


def evaluate(checkpoint: Path, split: str) -> dict[str, Any]:
    from train.cache import load_test, prepare
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment folder (uses its best trial) or checkpoint folder")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--out", type=Path, help="where to write the JSON (default: <checkpoint>/evaluation.json)")
    args = parser.parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError
    from train.files import write_atomic

    try:
        checkpoint = resolve_checkpoint(args.path)
        result = evaluate(checkpoint, args.split)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or checkpoint / "evaluation.json"
    write_atomic(out, json.dumps(result, indent=2))
    print(f"{args.split} accuracy {result['accuracy']:.4f} on {result['images']} images ({checkpoint})")
    for row in result["top_confusions"][:5]:
        print(f"  {row['count']:4d} x {row['true']} -> {row['predicted']}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
