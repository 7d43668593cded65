"""What every reader returns (:class:`Records`), the one error type for bad input (:class:`DataError`), and
the label helpers the readers share."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

# Track ids: class * TRACK_STRIDE + track keeps (class, track) pairs distinct (GTSRB has < 100 tracks/class).
TRACK_STRIDE = 1_000_000


class DataError(ValueError):
    """Unusable input data; the message is one line: what was wrong, where, and what is allowed."""


@dataclass
class Records:
    """The images of one split, undecoded."""

    root: Path
    """Data root the paths are relative to in fingerprints and messages."""
    paths: list[Path]
    """Absolute image paths."""
    labels: np.ndarray
    """(N,) int64 indices into ``class_names``."""
    class_names: list[str]
    """Name of each class index (of the training split, also for the test split)."""
    groups: np.ndarray
    """(N,) int64 ids of what the validation split keeps together: class * TRACK_STRIDE + track for GTSRB
    training frames, class * TRACK_STRIDE + frame // ASL_FRAME_BLOCK for ASL training frames, else a
    per-image id."""
    rois: Optional[np.ndarray] = None
    """(N, 4) int64 x1, y1, x2, y2 (inclusive) sign boxes, or None for layouts without boxes."""

    def __len__(self) -> int:
        return len(self.paths)


def int64(values: Iterable) -> np.ndarray:
    return np.asarray(list(values), dtype=np.int64)


def per_image_groups(count: int) -> np.ndarray:
    """One group per image: for test splits and layouts without tracks or frame blocks."""
    return np.arange(count, dtype=np.int64)


def map_test_classes(found: Sequence, known: Sequence, where: str, what: str) -> np.ndarray:
    """Indices of test classes into the training classes; a class the training set lacks is an error."""
    index = {c: i for i, c in enumerate(known)}
    unknown = sorted({c for c in found if c not in index}, key=str)
    if unknown:
        shown = ", ".join(str(c) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise DataError(f"{where}: test split has {len(set(found))} classes but the training split has "
                        f"{len(known)}; {what} not in training: {shown}")
    missing = len(known) - len(set(found))
    if missing:
        log.warning("%s: test split lacks %d of the %d training classes", where, missing, len(known))
    return int64([index[c] for c in found])
