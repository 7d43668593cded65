"""The confusion-matrix picture of an evaluation (``results/evaluate.py``'s JSON), readable at 43 classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from results.report.figures import pyplot, save

# Long GTSRB names ("No passing for vehicles over 3.5 metric tons") would push the matrix off the figure.
MAX_LABEL_CHARS = 28


def axis_labels(class_names: list[str]) -> list[str]:
    """"<index> <name>" per class, names shortened to MAX_LABEL_CHARS."""
    short = [name if len(name) <= MAX_LABEL_CHARS else name[:MAX_LABEL_CHARS - 1] + "…" for name in class_names]
    return [f"{index} {name}" if name != str(index) else name for index, name in enumerate(short)]


def plot_confusion(evaluation: dict[str, Any], path: Path, title: str | None = None) -> Path:
    """Write ``path`` (PNG): rows = true class, columns = predicted, colour = share of the true class's
    images (so rare classes show as clearly as common ones), every non-zero cell labelled with its count."""
    plt = pyplot()
    matrix = np.asarray(evaluation["confusion_matrix"], dtype=np.int64)
    names = list(evaluation["class_names"])
    classes = len(names)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    # ~0.3 inch per class keeps 43 classes' tick labels apart at 7 pt; small sets still get a usable figure.
    side = max(5.0, 0.3 * classes + 3.0)
    tick_pt = 9 if classes <= 15 else 7
    count_pt = 9 if classes <= 15 else 5
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=100, layout="constrained")
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i, j in zip(*np.nonzero(matrix)):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=count_pt,
                color="white" if share[i, j] > 0.55 else ("black" if i == j else "firebrick"))
    labels = axis_labels(names)
    ax.set_xticks(range(classes), labels, rotation=90, fontsize=tick_pt)
    ax.set_yticks(range(classes), labels, fontsize=tick_pt)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = evaluation.get("accuracy")
    heading = title or f"{evaluation.get('split', '')} split"
    if accuracy is not None:
        heading += f"\naccuracy {accuracy:.4f} on {evaluation['images']} images"
    ax.set_title(heading, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.6, label="share of the true class's images")
    return save(fig, path)
