"""Readers for the supported image-classification layouts, and layout detection.

Every reader returns :class:`Records`: image paths, integer labels (indices into ``class_names``),
optional sign boxes (ROIs) and group ids (one per GTSRB track, else one per image). Nothing is
decoded here except by :func:`load_image`, which the cache calls once per image.

Layouts (``root`` is ``data.root``):

``gtsrb`` -- the official GTSRB archives; ``root`` is the folder holding ``GTSRB/`` or ``GTSRB/`` itself::

    GTSRB/Final_Training/Images/000CC/GT-000CC.csv   Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId
    GTSRB/Final_Training/Images/000CC/TTTTT_FFFFF.ppm    (track, frame; CCCCC_TTTTT_FFFFF.ppm is read too)
    GTSRB/Final_Test/Images/NNNNN.ppm
    GT-final_test.csv   (same columns; it ships as a separate zip, so it is looked for in the data
                         root, in GTSRB/ and beside the test images; GT-final_test.test.csv lacks ClassId)

``gtsrb_kaggle`` -- the Kaggle mirror: ``root/Train.csv`` and ``root/Test.csv`` with the columns
``Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path`` and paths relative to root
(``Train/20/00020_00000_00000.png`` = class, track, frame; ``Test/00000.png``).

``asl`` -- Kaggle's ASL Alphabet: ``root/asl_alphabet_train/asl_alphabet_train/<class>/*.jpg`` and
``root/asl_alphabet_test/asl_alphabet_test/<class>_test.jpg`` (the single-nested variants
``asl_alphabet_train/<class>/`` and ``asl_alphabet_test/<class>_test.jpg`` are read too). Class names
are the training folders, sorted; a test image's class comes from its file name. The real test set
has no ``del`` image, so a test split may lack classes (logged), but never add one. The training images
of a class are consecutive video frames (``A1.jpg`` ... ``A3000.jpg``), each a near-duplicate of its
neighbours, so they are grouped into blocks of :data:`ASL_FRAME_BLOCK` consecutive frame numbers and the
validation split holds out whole blocks (a per-image split would put a neighbour of nearly every
validation frame into training).

``imagefolder`` -- ``root/train/<class>/*`` plus, optionally, ``root/test/<class>/*``; or plainly
``root/<class>/*``, which is a training set only (asking for its test split is an error). Class
names are the training folders, sorted; test folders map onto the same indices.

``synthetic`` -- a set written by :mod:`train.synthetic`: the ``gtsrb`` layout plus a
``synthetic.json`` marker that also holds readable class names.

GTSRB ROIs are ``(x1, y1, x2, y2)`` pixel coordinates with x2/y2 inclusive (the last sign pixel).
GTSRB class names are the 43 official sign names when the set has exactly classes 0..42, else the
zero-padded class ids (``"00007"``); labels are always indices into the sorted class ids present.

Every problem with the input is a :class:`DataError` with a one-line message.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

log = logging.getLogger("train.data")

FORMATS = ("gtsrb", "gtsrb_kaggle", "asl", "imagefolder", "synthetic")
SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SYNTHETIC_MARKER = "synthetic.json"

# Errors PIL raises for unreadable, truncated or corrupt files; anything else is a bug and propagates.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)

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
KAGGLE_COLUMNS = ("Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId", "Path")
ROI_COLUMNS = ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2")
GTSRB_TEST_GT = "GT-final_test.csv"

Namer = Callable[[Sequence[int]], list[str]]
"""Class names for the sorted class ids of a GTSRB-layout set."""

# Track ids: class * TRACK_STRIDE + track keeps (class, track) pairs distinct (GTSRB has < 100 tracks/class).
TRACK_STRIDE = 1_000_000

ASL_FRAME_BLOCK = 150
"""Consecutive frame numbers per ASL Alphabet validation block: ``A1.jpg``-``A150.jpg`` are one group,
``A151.jpg``-``A300.jpg`` the next, and so on (20 blocks per class of 3,000 frames; with val_fraction
0.1 two of them, 300 frames, are held out per class). A held-out block touches training frames only at
its two ends: at most 2 of its 150 frames have a directly neighbouring frame in training."""


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


# ----------------------------------------------------------------------------- detection


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
    for fmt, probe, expected in _PROBES:
        if probe(root):
            log.info("data root %s: detected layout '%s'", root, fmt)
            return fmt
        tried.append(f"{fmt} ({expected})")
    raise DataError(f"data root {root} matches no known layout; tried: {'; '.join(tried)}")


def _is_synthetic(root: Path) -> bool:
    return (root / SYNTHETIC_MARKER).is_file() and _gtsrb_base(root) is not None


def _is_imagefolder(root: Path) -> bool:
    return any(_has_image(d) for d in _subdirs(_imagefolder_dirs(root)[0]))


_PROBES: tuple[tuple[str, Callable[[Path], bool], str], ...] = (
    ("synthetic", _is_synthetic, f"GTSRB layout with {SYNTHETIC_MARKER}"),
    ("gtsrb", lambda r: _gtsrb_base(r) is not None, "GTSRB/Final_Training/Images/"),
    ("gtsrb_kaggle", lambda r: (r / "Train.csv").is_file(), "Train.csv"),
    ("asl", lambda r: (r / "asl_alphabet_train").is_dir(), "asl_alphabet_train/"),
    ("imagefolder", _is_imagefolder, "<class>/ or train/<class>/ folders with images"),
)


# ----------------------------------------------------------------------------- dispatch


def read_records(fmt: str, root: Path, split: str) -> Records:
    """Records of ``split`` ("train" or "test") of the ``fmt`` layout under ``root`` ("auto" detects)."""
    root = check_root(root)
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if fmt == "auto":
        fmt = detect_format(root)
    readers = {
        "gtsrb": (_gtsrb_train, _gtsrb_test),
        "synthetic": (_synthetic_train, _synthetic_test),
        "gtsrb_kaggle": (_kaggle_train, _kaggle_test),
        "asl": (_asl_train, _asl_test),
        "imagefolder": (_imagefolder_train, _imagefolder_test),
    }
    if fmt not in readers:
        raise DataError(f"data.format {fmt!r} is not one of auto, {', '.join(FORMATS)}")
    train_reader, test_reader = readers[fmt]
    records = train_reader(root) if split == "train" else test_reader(root)
    if split == "train" and len(records.class_names) < 2:
        raise DataError(f"data root {root}: the {fmt} training set has {len(records.class_names)} class "
                        f"({', '.join(records.class_names)}); a classifier needs at least 2")
    log.info("%s %s split under %s: %d images, %d classes", fmt, split, root, len(records),
             len(records.class_names))
    return records


# ----------------------------------------------------------------------------- GTSRB (official)


def _gtsrb_base(root: Path) -> Optional[Path]:
    """The ``GTSRB`` folder: ``root/GTSRB`` or ``root`` itself, whichever holds Final_Training/Images."""
    for base in (root / "GTSRB", root):
        if (base / "Final_Training" / "Images").is_dir():
            return base
    return None


def _require_gtsrb_base(root: Path) -> Path:
    base = _gtsrb_base(root)
    if base is None:
        raise DataError(f"{root}: no GTSRB/Final_Training/Images/ (expected root to hold GTSRB/ or be GTSRB/)")
    return base


def _gtsrb_class_dirs(base: Path) -> list[Path]:
    images = base / "Final_Training" / "Images"
    dirs = [d for d in _subdirs(images) if d.name.isdigit()]
    if not dirs:
        raise DataError(f"{images}: no class folders (expected 000CC/ folders holding GT-000CC.csv)")
    return dirs


def _gtsrb_train(root: Path, namer: Optional[Namer] = None) -> Records:
    base = _require_gtsrb_base(root)
    class_dirs = _gtsrb_class_dirs(base)
    class_ids = [int(d.name) for d in class_dirs]
    paths, labels, rois, groups = [], [], [], []
    for label, (class_dir, class_id) in enumerate(zip(class_dirs, class_ids)):
        gt = class_dir / f"GT-{class_dir.name}.csv"
        if not gt.is_file():
            what = "is empty" if not _has_image(class_dir) else f"has no {gt.name}"
            raise DataError(f"class folder {class_dir} {what} "
                            f"(each GTSRB class folder holds GT-<class>.csv and its images)")
        rows = _read_csv(gt, ";", GTSRB_COLUMNS)
        if not rows:
            raise DataError(f"class folder {class_dir} is empty: {gt.name} lists no images")
        row_paths = [class_dir / row["Filename"] for _, row in rows]
        _require_files(gt, rows, row_paths)
        for (line, row), path in zip(rows, row_paths):
            row_class = _int(row, "ClassId", gt, line)
            if row_class != class_id:
                raise DataError(f"{gt} line {line}: ClassId {row_class} inside class folder {class_dir.name} "
                                f"(expected {class_id})")
            paths.append(path)
            labels.append(label)
            rois.append(_roi(row, gt, line))
            groups.append(_track_group(path.stem, class_id, fallback=-(len(groups) + 1)))
    names = (namer or _gtsrb_names)(class_ids)
    return Records(root, paths, _int64(labels), names, _int64(groups), _int64(rois))


def _gtsrb_test(root: Path, namer: Optional[Namer] = None) -> Records:
    base = _require_gtsrb_base(root)
    class_ids = [int(d.name) for d in _gtsrb_class_dirs(base)]
    images = base / "Final_Test" / "Images"
    if not images.is_dir():
        raise DataError(f"{base}: no Final_Test/Images/ "
                        f"(the GTSRB test images ship as GTSRB_Final_Test_Images.zip)")
    gt = _find_gtsrb_test_gt(root, base, images)
    rows = _read_csv(gt, ";", GTSRB_COLUMNS)
    if not rows:
        raise DataError(f"{gt} lists no test images")
    paths = [images / row["Filename"] for _, row in rows]
    _require_files(gt, rows, paths)
    ids = [_int(row, "ClassId", gt, line) for line, row in rows]
    labels = _map_test_classes(ids, class_ids, f"{gt}", "ClassId")
    rois = [_roi(row, gt, line) for line, row in rows]
    return Records(root, paths, labels, (namer or _gtsrb_names)(class_ids),
                   np.arange(len(paths), dtype=np.int64), _int64(rois))


def _find_gtsrb_test_gt(root: Path, base: Path, images: Path) -> Path:
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


def _gtsrb_names(class_ids: Sequence[int]) -> list[str]:
    if list(class_ids) == list(range(len(GTSRB_CLASS_NAMES))):
        return list(GTSRB_CLASS_NAMES)
    return [f"{c:05d}" for c in class_ids]


def _track_group(stem: str, class_id: int, fallback: int) -> int:
    """(class, track) id from ``TTTTT_FFFFF`` (official) or ``CCCCC_TTTTT_FFFFF`` (Kaggle) names."""
    parts = stem.split("_")
    if not all(p.isdigit() for p in parts):
        return fallback
    if len(parts) == 2:
        return class_id * TRACK_STRIDE + int(parts[0])
    if len(parts) == 3:
        return int(parts[0]) * TRACK_STRIDE + int(parts[1])
    return fallback


# ----------------------------------------------------------------------------- synthetic


def _synthetic_namer(root: Path) -> Namer:
    """Class names from the generator's marker, indexed by ClassId."""
    marker = root / SYNTHETIC_MARKER
    if not marker.is_file():
        raise DataError(f"{root}: no {SYNTHETIC_MARKER}, so not a synthetic set "
                        f"(write one with python -m train.synthetic --out {root}, or use data.format gtsrb)")
    try:
        names = list(json.loads(marker.read_text())["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{marker}: unreadable synthetic set marker ({type(error).__name__}); "
                        f"regenerate with python -m train.synthetic --out {root}") from None

    def namer(class_ids: Sequence[int]) -> list[str]:
        if max(class_ids) >= len(names):
            raise DataError(f"{marker} names {len(names)} classes but the images hold class {max(class_ids):05d}")
        return [str(names[c]) for c in class_ids]

    return namer


def _synthetic_train(root: Path) -> Records:
    return _gtsrb_train(root, _synthetic_namer(root))


def _synthetic_test(root: Path) -> Records:
    return _gtsrb_test(root, _synthetic_namer(root))


# ----------------------------------------------------------------------------- GTSRB (Kaggle mirror)


def _kaggle_csv(root: Path, name: str) -> tuple[Path, list[tuple[int, dict[str, str]]]]:
    path = root / name
    if not path.is_file():
        raise DataError(f"{root}: no {name} (the Kaggle GTSRB mirror has Train.csv and Test.csv in its root)")
    rows = _read_csv(path, ",", KAGGLE_COLUMNS)
    if not rows:
        raise DataError(f"{path} lists no images")
    return path, rows


def _kaggle_class_ids(path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[int]:
    return sorted({_int(row, "ClassId", path, line) for line, row in rows})


def _kaggle_paths(root: Path, path: Path, rows: list[tuple[int, dict[str, str]]]) -> list[Path]:
    paths = [root / row["Path"].replace("\\", "/") for _, row in rows]
    _require_files(path, rows, paths)
    return paths


def _kaggle_train(root: Path) -> Records:
    path, rows = _kaggle_csv(root, "Train.csv")
    class_ids = _kaggle_class_ids(path, rows)
    paths = _kaggle_paths(root, path, rows)
    ids = [_int(row, "ClassId", path, line) for line, row in rows]
    index = {c: i for i, c in enumerate(class_ids)}
    groups = [_track_group(p.stem, c, fallback=-(i + 1)) for i, (p, c) in enumerate(zip(paths, ids))]
    rois = [_roi(row, path, line) for line, row in rows]
    return Records(root, paths, _int64([index[c] for c in ids]), _gtsrb_names(class_ids), _int64(groups),
                   _int64(rois))


def _kaggle_test(root: Path) -> Records:
    train_csv, train_rows = _kaggle_csv(root, "Train.csv")
    class_ids = _kaggle_class_ids(train_csv, train_rows)
    path, rows = _kaggle_csv(root, "Test.csv")
    paths = _kaggle_paths(root, path, rows)
    ids = [_int(row, "ClassId", path, line) for line, row in rows]
    labels = _map_test_classes(ids, class_ids, str(path), "ClassId")
    rois = [_roi(row, path, line) for line, row in rows]
    return Records(root, paths, labels, _gtsrb_names(class_ids), np.arange(len(paths), dtype=np.int64),
                   _int64(rois))


# ----------------------------------------------------------------------------- ASL Alphabet


def _asl_dir(root: Path, name: str) -> Path:
    """``root/name/name`` (as the Kaggle zip unpacks) or the single-nested ``root/name``."""
    outer = root / name
    if not outer.is_dir():
        raise DataError(f"{root}: no {name}/ "
                        f"(the ASL Alphabet layout has asl_alphabet_train/ and asl_alphabet_test/)")
    inner = outer / name
    return inner if inner.is_dir() else outer


def _asl_train(root: Path) -> Records:
    paths, labels, names = _read_class_folders(_asl_dir(root, "asl_alphabet_train"))
    groups = [_frame_block_group(path.stem, int(label), fallback=-(i + 1))
              for i, (path, label) in enumerate(zip(paths, labels))]
    return Records(root, paths, labels, names, _int64(groups))


def _frame_block_group(stem: str, label: int, fallback: int) -> int:
    """(class, block of ASL_FRAME_BLOCK frames) id from a ``<class><frame number>`` name such as ``A1234``;
    a name without a trailing number is a group of its own (``fallback``, unique and negative)."""
    match = re.fullmatch(r"\D*?(\d+)", stem)
    if match is None:
        return fallback
    # Frames are numbered from 1 in the Kaggle set: 1-150 are block 0, ..., 2851-3000 block 19.
    return label * TRACK_STRIDE + max(int(match.group(1)) - 1, 0) // ASL_FRAME_BLOCK


def _asl_test(root: Path) -> Records:
    names = [d.name for d in _class_dirs(_asl_dir(root, "asl_alphabet_train"))]
    test_dir = _asl_dir(root, "asl_alphabet_test")
    paths = _images_in(test_dir)
    if not paths:
        raise DataError(f"{test_dir}: no test images (expected <class>_test.jpg files)")
    classes = []
    for path in paths:
        match = re.fullmatch(r"(.+)_test", path.stem)
        if match is None:
            raise DataError(f"ASL test image {path} is not named <class>_test{path.suffix} "
                            f"(classes: {', '.join(names)})")
        classes.append(match.group(1))
    labels = _map_test_classes(classes, names, str(test_dir), "class")
    return Records(root, paths, labels, names, np.arange(len(paths), dtype=np.int64))


# ----------------------------------------------------------------------------- ImageFolder


def _imagefolder_dirs(root: Path) -> tuple[Path, Optional[Path]]:
    """(train folder, test folder or None): ``root/train`` + ``root/test`` if present, else ``root``."""
    train = root / "train"
    if train.is_dir() and any(_subdirs(train)):
        test = root / "test"
        return train, (test if test.is_dir() else None)
    return root, None


def _imagefolder_train(root: Path) -> Records:
    paths, labels, names = _read_class_folders(_imagefolder_dirs(root)[0])
    return Records(root, paths, labels, names, np.arange(len(paths), dtype=np.int64))


def _imagefolder_test(root: Path) -> Records:
    train_dir, test_dir = _imagefolder_dirs(root)
    if test_dir is None:
        raise DataError(f"imagefolder {root} has no test split (put images in {root}/train/<class>/ and "
                        f"{root}/test/<class>/ to have one)")
    names = [d.name for d in _class_dirs(train_dir)]
    paths, test_labels, test_names = _read_class_folders(test_dir)
    labels = _map_test_classes([test_names[i] for i in test_labels], names, str(test_dir), "class folder")
    return Records(root, paths, labels, names, np.arange(len(paths), dtype=np.int64))


# ----------------------------------------------------------------------------- class folders


def _class_dirs(folder: Path) -> list[Path]:
    dirs = list(_subdirs(folder))
    if not dirs:
        raise DataError(f"{folder}: no class folders (expected {folder}/<class>/ with images)")
    return dirs


def _read_class_folders(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Images of ``folder/<class>/*``: (paths, labels, sorted class names); empty classes are errors."""
    paths: list[Path] = []
    labels: list[int] = []
    dirs = _class_dirs(folder)
    for label, class_dir in enumerate(dirs):
        images = _images_in(class_dir)
        if not images:
            raise DataError(f"class folder {class_dir} is empty "
                            f"(no files ending in {', '.join(IMAGE_EXTENSIONS)})")
        paths += images
        labels += [label] * len(images)
    return paths, _int64(labels), [d.name for d in dirs]


def _map_test_classes(found: Sequence, known: Sequence, where: str, what: str) -> np.ndarray:
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
    return _int64([index[c] for c in found])


# ----------------------------------------------------------------------------- CSV helpers


def _read_csv(path: Path, delimiter: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header must name every ``required`` column.

    Line numbers are as an editor shows them (the header is line 1). A row cut short (fewer cells
    than the header) and a quote left open (the csv module then reads on across line ends, into one
    huge cell) are errors naming the file and the line.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    line = 1  # the header
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} "
                                f"(expected header {delimiter.join(required)})")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                texts = [v for value in row.values() for v in (value if isinstance(value, list) else [value])
                         if isinstance(v, str)]
                if any("\n" in text for text in texts):  # only a quote left open makes a cell span lines
                    # A quote still open at the end of the file takes the last line end into its cell too.
                    first = line - sum(text.rstrip("\r\n").count("\n") for text in texts)
                    raise DataError(f"{path} line {first}: a quote (\") is not closed, so the row runs on to line "
                                    f"{line}; fix or remove the quote")
                cells = _cells(row)
                if not any(cells.values()):  # ";;;;"-only lines
                    continue
                if None in row.values():
                    short = [name for name in header if row.get(name) is None]
                    raise DataError(f"{path} line {line}: {len(header) - len(short)} of {len(header)} columns "
                                    f"(missing {', '.join(short)}); expected {delimiter.join(header)}")
                rows.append((line, cells))
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path} line {line + 1}: not readable as CSV ({error}); is a quote (\") left open?") from None
    return rows


def _cells(row: dict) -> dict[str, str]:
    return {k: v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}


def _int(row: dict[str, str], column: str, path: Path, line: int) -> int:
    try:
        return int(row[column])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path} line {line}: {column} is {row.get(column)!r}, expected an integer") from None


def _roi(row: dict[str, str], path: Path, line: int) -> list[int]:
    return [_int(row, column, path, line) for column in ROI_COLUMNS]


def _require_files(csv_path: Path, rows: list[tuple[int, dict[str, str]]], paths: list[Path]) -> None:
    missing = [(line, p) for (line, _), p in zip(rows, paths) if not p.is_file()]
    if missing:
        line, path = missing[0]
        raise DataError(f"{csv_path} line {line} names missing file {path} "
                        f"({len(missing)} of {len(rows)} rows name missing files)")


# ----------------------------------------------------------------------------- file helpers


def _subdirs(folder: Path) -> list[Path]:
    """Visible subfolders, sorted by name (so class indices are stable)."""
    try:
        return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: d.name)
    except OSError:
        return []


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)


def _has_image(folder: Path) -> bool:
    try:
        return any(_is_image(p) for p in folder.iterdir())
    except OSError:
        return False


def _int64(values: Iterable) -> np.ndarray:
    return np.asarray(list(values), dtype=np.int64)


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


# ----------------------------------------------------------------------------- decoding


def load_image(path: Path, roi: Optional[Sequence[int]], size: int, roi_crop: bool) -> np.ndarray:
    """Decode ``path`` to (size, size, 3) uint8 RGB: optionally cropped to ``roi``, then resized.

    The resize is PIL bilinear, which widens its filter when shrinking (antialiased). Raises one of
    :data:`IMAGE_ERRORS` for an unreadable file or a box outside the image.
    """
    with Image.open(path) as image:
        if not (roi_crop and roi is not None):
            # JPEG can decode at 1/2, 1/4, 1/8 scale directly: much faster for large photos, and
            # draft never goes below the requested size, so the bilinear resize still does the rest.
            image.draft("RGB", (size, size))
        image = image.convert("RGB")
        if roi_crop and roi is not None:
            image = image.crop(_crop_box(roi, image.size))
        image = image.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _crop_box(roi: Sequence[int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """PIL crop box (right/bottom exclusive) of an inclusive ROI, clipped to the image."""
    width, height = image_size
    x1, y1 = max(0, int(roi[0])), max(0, int(roi[1]))
    x2, y2 = min(width, int(roi[2]) + 1), min(height, int(roi[3]) + 1)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ValueError(f"ROI {tuple(int(v) for v in roi)} lies outside the {width}x{height} image")
    return x1, y1, x2, y2
