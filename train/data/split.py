"""Seeded, class-stratified train/validation split over groups.

A group is what must not straddle the split: one GTSRB track (frames of one physical sign, which are
near-duplicates, so sharing a track between train and val would inflate val accuracy), or a single
image in data sets without tracks. Within each class the groups are shuffled with the seed and
``round(val_fraction * groups)`` of them go to validation, clamped so that a class with at least two
groups keeps at least one in each part and a class with a single group stays in training.

The split is cheap (a shuffle of group ids per class), so it is recomputed from the cached labels and
groups at every load; changing ``val_fraction`` or ``split_seed`` never rebuilds the image cache.
"""

from __future__ import annotations

import numpy as np

from train.data import DataError


def train_val_split(labels: np.ndarray, groups: np.ndarray, val_fraction: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices), each sorted ascending, splitting whole groups per class."""
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    if labels.shape != groups.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and groups {groups.shape} must be equal-length vectors")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"data.val_fraction: got {val_fraction!r}, allowed: 0 < x < 1")
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(labels), dtype=bool)
    # Classes in ascending order, so the sequence of draws (and thus the split) depends only on the seed.
    for label in np.unique(labels):
        in_class = labels == label
        class_groups = np.unique(groups[in_class])  # sorted: the shuffle below is the only randomness
        val_groups = _pick_val_groups(class_groups, val_fraction, rng)
        val_mask |= in_class & np.isin(groups, val_groups)
    if not val_mask.any():
        raise DataError(f"cannot hold out a validation split: each of the {len(np.unique(labels))} classes "
                        f"has a single group (track or image); at least 2 per class are needed")
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def _pick_val_groups(class_groups: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The groups of one class held out for validation (none when the class has a single group)."""
    count = len(class_groups)
    if count < 2:
        return class_groups[:0]
    n_val = min(max(int(round(val_fraction * count)), 1), count - 1)
    return rng.permutation(class_groups)[:n_val]
