"""Kaggle's ASL Alphabet (``data.format: asl``): ``root/asl_alphabet_train/asl_alphabet_train/<class>/*.jpg`` and
``root/asl_alphabet_test/asl_alphabet_test/<class>_test.jpg`` (the single-nested variants
``asl_alphabet_train/<class>/`` and ``asl_alphabet_test/<class>_test.jpg`` are read too).

Class names are the training folders, sorted; a test image's class comes from its file name. The real
test set has no ``del`` image, so a test split may lack classes (logged), but never add one. The training
images of a class are consecutive video frames (``A1.jpg`` ... ``A3000.jpg``), each a near-duplicate of
its neighbours, so they are grouped into blocks of :data:`ASL_FRAME_BLOCK` consecutive frame numbers and
the validation split holds out whole blocks (a per-image split would put a neighbour of nearly every
validation frame into training).
"""

from __future__ import annotations

import re
from pathlib import Path

from train.data.folders import class_dirs, images_in, read_class_folders
from train.data.readers.reader import Reader
from train.data.records import TRACK_STRIDE, DataError, Records, int64, map_test_classes, per_image_groups

ASL_FRAME_BLOCK = 150
"""Consecutive frame numbers per ASL Alphabet validation block: ``A1.jpg``-``A150.jpg`` are one group,
``A151.jpg``-``A300.jpg`` the next, and so on (20 blocks per class of 3,000 frames; with val_fraction
0.1 two of them, 300 frames, are held out per class). A held-out block touches training frames only at
its two ends: at most 2 of its 150 frames have a directly neighbouring frame in training."""


def _asl_dir(root: Path, name: str) -> Path:
    """``root/name/name`` (as the Kaggle zip unpacks) or the single-nested ``root/name``."""
    outer = root / name
    if not outer.is_dir():
        raise DataError(f"{root}: no {name}/ "
                        f"(the ASL Alphabet layout has asl_alphabet_train/ and asl_alphabet_test/)")
    inner = outer / name
    return inner if inner.is_dir() else outer


def read_train(root: Path) -> Records:
    paths, labels, names = read_class_folders(_asl_dir(root, "asl_alphabet_train"))
    groups = [frame_block_group(path.stem, int(label), fallback=-(i + 1))
              for i, (path, label) in enumerate(zip(paths, labels))]
    return Records(root, paths, labels, names, int64(groups))


def frame_block_group(stem: str, label: int, fallback: int) -> int:
    """(class, block of ASL_FRAME_BLOCK frames) id from a ``<class><frame number>`` name such as ``A1234``;
    a name without a trailing number is a group of its own (``fallback``, unique and negative)."""
    match = re.fullmatch(r"\D*?(\d+)", stem)
    if match is None:
        return fallback
    # Frames are numbered from 1 in the Kaggle set: 1-150 are block 0, ..., 2851-3000 block 19.
    return label * TRACK_STRIDE + max(int(match.group(1)) - 1, 0) // ASL_FRAME_BLOCK


def read_test(root: Path) -> Records:
    names = [d.name for d in class_dirs(_asl_dir(root, "asl_alphabet_train"))]
    test_dir = _asl_dir(root, "asl_alphabet_test")
    paths = images_in(test_dir)
    if not paths:
        raise DataError(f"{test_dir}: no test images (expected <class>_test.jpg files)")
    classes = []
    for path in paths:
        match = re.fullmatch(r"(.+)_test", path.stem)
        if match is None:
            raise DataError(f"ASL test image {path} is not named <class>_test{path.suffix} "
                            f"(classes: {', '.join(names)})")
        classes.append(match.group(1))
    labels = map_test_classes(classes, names, str(test_dir), "class")
    return Records(root, paths, labels, names, per_image_groups(len(paths)))


READER = Reader("asl", read_train, read_test, detect=lambda root: (root / "asl_alphabet_train").is_dir(),
                looks_like="asl_alphabet_train/")
