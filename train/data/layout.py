"""Which layout a data root holds (``data.format: auto``), and the check that the root is a folder at all."""

from __future__ import annotations

import logging
from pathlib import Path

from train.data.readers import READERS
from train.data.records import DataError

log = logging.getLogger(__name__)

# Most specific first: a synthetic set is also a GTSRB layout, and nearly any folder of folders is an ImageFolder.
DETECTION_ORDER = ("synthetic", "gtsrb", "gtsrb_kaggle", "asl", "imagefolder")


def check_root(root: Path) -> Path:
    """The absolute root, or a DataError when it is missing or not a directory."""
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise DataError(f"data root {root} does not exist (set data.root to a directory holding the data set)")
    if not root.is_dir():
        raise DataError(f"data root {root} is not a directory (set data.root to a directory holding the data set)")
    return root


def detect_format(root: Path) -> str:
    """The layout found under ``root`` (never ``auto``); logs it, or raises naming the layouts tried."""
    root = check_root(root)
    tried = []
    for fmt in DETECTION_ORDER:
        reader = READERS[fmt]
        if reader.detect(root):
            log.info("data root %s: detected layout '%s'", root, fmt)
            return fmt
        tried.append(f"{fmt} ({reader.looks_like})")
    raise DataError(f"data root {root} matches no known layout; tried: {'; '.join(tried)}")
