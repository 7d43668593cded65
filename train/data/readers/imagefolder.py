"""Any ImageFolder (``data.format: imagefolder``): ``root/train/<class>/*`` plus, optionally,
``root/test/<class>/*``; or plainly ``root/<class>/*``, which is a training set only (asking for its test
split is an error). Class names are the training folders, sorted; test folders map onto the same indices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from train.data.folders import class_dirs, has_image, read_class_folders, subdirs
from train.data.readers.reader import Reader
from train.data.records import DataError, Records, map_test_classes, per_image_groups


def _dirs(root: Path) -> tuple[Path, Optional[Path]]:
    """(train folder, test folder or None): ``root/train`` + ``root/test`` if present, else ``root``."""
    train = root / "train"
    if train.is_dir() and any(subdirs(train)):
        test = root / "test"
        return train, (test if test.is_dir() else None)
    return root, None


def read_train(root: Path) -> Records:
    paths, labels, names = read_class_folders(_dirs(root)[0])
    return Records(root, paths, labels, names, per_image_groups(len(paths)))


def read_test(root: Path) -> Records:
    train_dir, test_dir = _dirs(root)
    if test_dir is None:
        raise DataError(f"imagefolder {root} has no test split (put images in {root}/train/<class>/ and "
                        f"{root}/test/<class>/ to have one)")
    names = [d.name for d in class_dirs(train_dir)]
    paths, test_labels, test_names = read_class_folders(test_dir)
    labels = map_test_classes([test_names[i] for i in test_labels], names, str(test_dir), "class folder")
    return Records(root, paths, labels, names, per_image_groups(len(paths)))


def _detect(root: Path) -> bool:
    return any(has_image(d) for d in subdirs(_dirs(root)[0]))


READER = Reader("imagefolder", read_train, read_test, _detect,
                looks_like="<class>/ or train/<class>/ folders with images")
