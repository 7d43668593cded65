"""``read_records``: one split of a data root, through the layout's reader (``auto`` detected first)."""

from __future__ import annotations

import logging
from pathlib import Path

from train.data.layout import check_root, detect_format
from train.data.readers import create_reader
from train.data.records import DataError, Records

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


def read_records(fmt: str, root: Path, split: str) -> Records:
    """Records of ``split`` ("train" or "test") of the ``fmt`` layout under ``root`` ("auto" detects)."""
    root = check_root(root)
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if fmt == "auto":
        fmt = detect_format(root)
    reader = create_reader(fmt)
    records = reader.train(root) if split == "train" else reader.test(root)
    if split == "train" and len(records.class_names) < 2:
        raise DataError(f"data root {root}: the {fmt} training set has {len(records.class_names)} class "
                        f"({', '.join(records.class_names)}); a classifier needs at least 2")
    log.info("%s %s split under %s: %d images, %d classes", fmt, split, root, len(records),
             len(records.class_names))
    return records
