"""The official GTSRB archives (``data.format: gtsrb``); ``root`` holds ``GTSRB/`` or is ``GTSRB/`` itself::

    GTSRB/Final_Training/Images/000CC/GT-000CC.csv   Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId
    GTSRB/Final_Training/Images/000CC/TTTTT_FFFFF.ppm    (track, frame; CCCCC_TTTTT_FFFFF.ppm is read too)
    GTSRB/Final_Test/Images/NNNNN.ppm
    GT-final_test.csv   (same columns; it ships as a separate zip, so it is looked for in the data
                         root, in GTSRB/ and beside the test images; GT-final_test.test.csv lacks ClassId)

ROIs are ``(x1, y1, x2, y2)`` pixel coordinates with x2/y2 inclusive (the last sign pixel). Class names
are the 43 official sign names when the set has exactly classes 0..42, else the zero-padded class ids
(``"00007"``); labels are always indices into the sorted class ids present. A training image's group is
its (class, track), so the validation split holds out whole tracks. The Kaggle mirror and the synthetic
set reuse the track ids and class names from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from train.data.csv_rows import cell_int, read_csv, require_files, roi
from train.data.folders import has_image, subdirs
from train.data.readers.reader import Reader
from train.data.records import TRACK_STRIDE, DataError, Records, int64, map_test_classes, per_image_groups

GTSRB_CLASS_NAMES = (
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road",
    "Road narrows on the right", "Road work", "Traffic signals", "Pedestrians", "Children crossing",
    "Bicycles crossing", "Beware of ice/snow", "Wild animals crossing", "End of all speed and passing limits",
    "Turn right ahead", "Turn left ahead", "Ahead only", "Go straight or right", "Go straight or left",
    "Keep right", "Keep left", "Roundabout mandatory", "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)

GTSRB_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
GTSRB_TEST_GT = "GT-final_test.csv"

Namer = Callable[[Sequence[int]], list[str]]
"""Class names for the sorted class ids of a GTSRB-layout set."""


def gtsrb_folder(root: Path) -> Optional[Path]:
    """The ``GTSRB`` folder: ``root/GTSRB`` or ``root`` itself, whichever holds Final_Training/Images."""
    for base in (root / "GTSRB", root):
        if (base / "Final_Training" / "Images").is_dir():
            return base
    return None


def _require_base(root: Path) -> Path:
    base = gtsrb_folder(root)
    if base is None:
        raise DataError(f"{root}: no GTSRB/Final_Training/Images/ (expected root to hold GTSRB/ or be GTSRB/)")
    return base


def _class_dirs(base: Path) -> list[Path]:
    images = base / "Final_Training" / "Images"
    dirs = [d for d in subdirs(images) if d.name.isdigit()]
    if not dirs:
        raise DataError(f"{images}: no class folders (expected 000CC/ folders holding GT-000CC.csv)")
    return dirs


def read_train(root: Path, namer: Optional[Namer] = None) -> Records:
    base = _require_base(root)
    class_dirs = _class_dirs(base)
    class_ids = [int(d.name) for d in class_dirs]
    paths, labels, rois, groups = [], [], [], []
    for label, (class_dir, class_id) in enumerate(zip(class_dirs, class_ids)):
        gt = class_dir / f"GT-{class_dir.name}.csv"
        if not gt.is_file():
            what = "is empty" if not has_image(class_dir) else f"has no {gt.name}"
            raise DataError(f"class folder {class_dir} {what} "
                            f"(each GTSRB class folder holds GT-<class>.csv and its images)")
        rows = read_csv(gt, ";", GTSRB_COLUMNS)
        if not rows:
            raise DataError(f"class folder {class_dir} is empty: {gt.name} lists no images")
        row_paths = [class_dir / row["Filename"] for _, row in rows]
        require_files(gt, rows, row_paths)
        for (line, row), path in zip(rows, row_paths):
            row_class = cell_int(row, "ClassId", gt, line)
            if row_class != class_id:
                raise DataError(f"{gt} line {line}: ClassId {row_class} inside class folder {class_dir.name} "
                                f"(expected {class_id})")
            paths.append(path)
            labels.append(label)
            rois.append(roi(row, gt, line))
            groups.append(track_group(path.stem, class_id, fallback=-(len(groups) + 1)))
    names = (namer or class_names)(class_ids)
    return Records(root, paths, int64(labels), names, int64(groups), int64(rois))


def read_test(root: Path, namer: Optional[Namer] = None) -> Records:
    base = _require_base(root)
    class_ids = [int(d.name) for d in _class_dirs(base)]
    images = base / "Final_Test" / "Images"
    if not images.is_dir():
        raise DataError(f"{base}: no Final_Test/Images/ "
                        f"(the GTSRB test images ship as GTSRB_Final_Test_Images.zip)")
    gt = _find_test_gt(root, base, images)
    rows = read_csv(gt, ";", GTSRB_COLUMNS)
    if not rows:
        raise DataError(f"{gt} lists no test images")
    paths = [images / row["Filename"] for _, row in rows]
    require_files(gt, rows, paths)
    ids = [cell_int(row, "ClassId", gt, line) for line, row in rows]
    labels = map_test_classes(ids, class_ids, f"{gt}", "ClassId")
    rois = [roi(row, gt, line) for line, row in rows]
    return Records(root, paths, labels, (namer or class_names)(class_ids),
                   per_image_groups(len(paths)), int64(rois))


def _find_test_gt(root: Path, base: Path, images: Path) -> Path:
    """GT-final_test.csv from the data root, GTSRB/ or beside the test images (first found)."""
    places = _unique([root, base.parent, base, images])
    for place in places:
        if (place / GTSRB_TEST_GT).is_file():
            return place / GTSRB_TEST_GT
    hint = ""
    if (images / "GT-final_test.test.csv").is_file():
        hint = " (GT-final_test.test.csv has no ClassId: add GTSRB_Final_Test_GT.zip)"
    raise DataError(f"GTSRB test ground truth {GTSRB_TEST_GT} not found in any of "
                    f"{', '.join(str(p) for p in places)}{hint}")


def class_names(class_ids: Sequence[int]) -> list[str]:
    if list(class_ids) == list(range(len(GTSRB_CLASS_NAMES))):
        return list(GTSRB_CLASS_NAMES)
    return [f"{c:05d}" for c in class_ids]


def track_group(stem: str, class_id: int, fallback: int) -> int:
    """(class, track) id from ``TTTTT_FFFFF`` (official) or ``CCCCC_TTTTT_FFFFF`` (Kaggle) names."""
    parts = stem.split("_")
    if not all(p.isdigit() for p in parts):
        return fallback
    if len(parts) == 2:
        return class_id * TRACK_STRIDE + int(parts[0])
    if len(parts) == 3:
        return int(parts[0]) * TRACK_STRIDE + int(parts[1])
    return fallback


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


READER = Reader("gtsrb", read_train, read_test, detect=lambda root: gtsrb_folder(root) is not None,
                looks_like="GTSRB/Final_Training/Images/")
