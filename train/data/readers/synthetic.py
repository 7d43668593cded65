"""The synthetic set (``data.format: synthetic``) that :mod:`train.data.synthetic` writes: the ``gtsrb`` layout plus
a ``synthetic.json`` marker that also holds readable class names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from train.data.readers import gtsrb
from train.data.readers.reader import Reader
from train.data.records import DataError, Records

SYNTHETIC_MARKER = "synthetic.json"


def _namer(root: Path) -> gtsrb.Namer:
    """Class names from the generator's marker, indexed by ClassId."""
    marker = root / SYNTHETIC_MARKER
    if not marker.is_file():
        raise DataError(f"{root}: no {SYNTHETIC_MARKER}, so not a synthetic set "
                        f"(write one with python -m train.data.synthetic --out {root}, or use data.format gtsrb)")
    try:
        names = list(json.loads(marker.read_text())["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{marker}: unreadable synthetic set marker ({type(error).__name__}); "
                        f"regenerate with python -m train.data.synthetic --out {root}") from None

    def namer(class_ids: Sequence[int]) -> list[str]:
        if max(class_ids) >= len(names):
            raise DataError(f"{marker} names {len(names)} classes but the images hold class {max(class_ids):05d}")
        return [str(names[c]) for c in class_ids]

    return namer


def read_train(root: Path) -> Records:
    return gtsrb.read_train(root, _namer(root))


def read_test(root: Path) -> Records:
    return gtsrb.read_test(root, _namer(root))


def _detect(root: Path) -> bool:
    return (root / SYNTHETIC_MARKER).is_file() and gtsrb.gtsrb_folder(root) is not None


READER = Reader("synthetic", read_train, read_test, _detect, looks_like=f"GTSRB layout with {SYNTHETIC_MARKER}")
