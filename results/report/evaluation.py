"""A checkpoint evaluated on a split (results/evaluate.py's numbers and files), and the best trial's test evaluation
for the report: ``evaluation-test.json`` beside its checkpoint, or made now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np


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
    """The checkpoint's accuracy, per-class accuracy and confusions on ``split`` (test or val) of its data set."""
    from results.checkpoints import load_checkpoint
    from train.data import DataError
    from train.data.prepared import load_test, prepare

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
    from infra.files import write_atomic
    from results.report.confusion import plot_confusion

    folder.mkdir(parents=True, exist_ok=True)
    split = result["split"]
    picture = plot_confusion(result, folder / f"confusion-{split}.png",
                             title=f"{Path(result['checkpoint']).parent.name} on the {split} split")
    out = folder / f"evaluation-{split}.json"
    write_atomic(out, json.dumps(result, indent=2))
    return out, picture


def best_test_evaluation(exp, run_evaluate: bool, scratch: Path) -> tuple[Optional[dict[str, Any]], str]:
    """(the best trial's test evaluation or None, where it came from / how to make it)."""
    from results.checkpoints import has_checkpoint
    from train.data import DataError
    from tune.experiment import storage
    from tune.experiment.records import ExperimentError

    best = exp.best
    if not best.checkpoint:
        raise ExperimentError(f"{exp.location}: the best trial {best.trial_id} has no checkpoint in summary.json")
    existing = storage.join(best.checkpoint, "evaluation-test.json")
    if storage.is_file(existing):
        return json.loads(storage.read_text(existing)), existing
    command = f"python results/evaluate.py {exp.location}"
    if not run_evaluate:
        return None, f"not evaluated yet (--no-evaluate): {command}"
    if not has_checkpoint(best.checkpoint):
        from train.checkpoint import CHECKPOINT_FILE

        raise ExperimentError(f"{exp.location}: the best trial's checkpoint {best.checkpoint} is missing (no "
                              f"{CHECKPOINT_FILE}); --no-evaluate reports without the test split")
    local = storage.local_copy(best.checkpoint, scratch)
    try:
        result = evaluate(local, "test")
    except DataError as error:
        raise DataError(f"{error} (the best trial's test evaluation needs its data set here; "
                        "--no-evaluate reports without it)") from None
    result["checkpoint"] = best.checkpoint
    json_path, png_path = write_outputs(result, local)  # beside the checkpoint (a copy, for object storage)
    if storage.is_uri(best.checkpoint):
        for path in (json_path, png_path):
            storage.write_bytes(storage.join(best.checkpoint, path.name), path.read_bytes())
    return result, existing
