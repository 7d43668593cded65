"""The Kaggle mirror of GTSRB (``data.format: gtsrb_kaggle``): ``root/Train.csv`` and ``root/Test.csv`` with the
columns ``Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path`` and paths relative to root
(``Train/20/00020_00000_00000.png`` = class, track, frame; ``Test/00000.png``). Tracks, boxes and class
names as in :mod:`train.data.readers.gtsrb`."""

from __future__ import annotations

from pathlib import Path

from train.data.csv_rows import cell_int, read_csv, require_files, roi
from train.data.readers.gtsrb import class_names, track_group
from train.data.readers.reader import Reader
from train.data.records import DataError, Records, int64, map_test_classes, per_image_groups

KAGGLE_COLUMNS = ("Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId", "Path")


def _csv(root: Path, name: str) -> tuple[Path, list[tuple[int, dict[str, str]]]]:
    path = root / name
    if not path.is_file():
        raise DataError(f"{root}: no {name} (the Kaggle GTSRB mirror has Train.csv and Test.csv in its root)")
    rows = read_csv(path, ",", KAGGLE_COLUMNS)
    if not rows:
        raise DataError(f"{path} lists no images")
    return path, rows


def _class_ids(path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[int]:
    return sorted({cell_int(row, "ClassId", path, line) for line, row in rows})


def _paths(root: Path, path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[Path]:
    paths = [root / row["Path"].replace("\\", "/") for _, row in rows]
    require_files(path, rows, paths)
    return paths


def read_train(root: Path) -> Records:
    path, rows = _csv(root, "Train.csv")
    class_ids = _class_ids(path, rows)
    paths = _paths(root, path, rows)
    ids = [cell_int(row, "ClassId", path, line) for line, row in rows]
    index = {c: i for i, c in enumerate(class_ids)}
    groups = [track_group(p.stem, c, fallback=-(i + 1)) for i, (p, c) in enumerate(zip(paths, ids))]
    rois = [roi(row, path, line) for line, row in rows]
    return Records(root, paths, int64([index[c] for c in ids]), class_names(class_ids), int64(groups),
                   int64(rois))


def read_test(root: Path) -> Records:
    train_csv, train_rows = _csv(root, "Train.csv")
    class_ids = _class_ids(train_csv, train_rows)
    path, rows = _csv(root, "Test.csv")
    paths = _paths(root, path, rows)
    ids = [cell_int(row, "ClassId", path, line) for line, row in rows]
    labels = map_test_classes(ids, class_ids, str(path), "ClassId")
    rois = [roi(row, path, line) for line, row in rows]
    return Records(root, paths, labels, class_names(class_ids), per_image_groups(len(paths)),
                   int64(rois))


READER = Reader("gtsrb_kaggle", read_train, read_test, detect=lambda root: (root / "Train.csv").is_file(),
                looks_like="Train.csv")
