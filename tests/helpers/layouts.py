"""Tiny fixture trees in the real on-disk layouts of every supported data set (for any test to reuse).

Each image is one flat colour per class (:func:`class_colour`). GTSRB-style images paint only the
annotated ROI in that colour and the border around it :data:`BORDER` grey, so a test can tell
a cropped image (all class colour) from an uncropped one (grey corners). Frame sizes vary as in GTSRB.
Every writer returns the path to use as ``data.root``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

BORDER = (128, 128, 128)
GTSRB_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
KAGGLE_HEADER = "Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path"
GT_PLACES = ("root", "gtsrb", "images")  # where GT-final_test.csv may lie: data root, GTSRB/, beside the images

_PALETTE = ((220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 210, 20), (200, 40, 200), (20, 200, 210),
            (250, 140, 10), (120, 60, 20), (250, 250, 250), (10, 10, 10))


def class_colour(index: int) -> tuple[int, int, int]:
    """A distinct flat colour per class (the palette, then darker/lighter variants)."""
    r, g, b = _PALETTE[index % len(_PALETTE)]
    shift = (index // len(_PALETTE)) * 7
    return ((r + shift) % 256, (g + 2 * shift) % 256, (b + 3 * shift) % 256)


def frame_size(number: int) -> tuple[int, int]:
    """(width, height) of the number-th fixture frame: varied, never square-aligned, like GTSRB."""
    return 28 + number % 5 * 2, 30 + number % 3 * 3


def roi_of(width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive sign box leaving a border of a quarter of each side (big enough to survive a resize)."""
    return width // 4, height // 4, width - 1 - width // 4, height - 1 - height // 4


def write_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int],
                roi: Optional[Sequence[int]] = None) -> None:
    """An image of ``colour``; with ``roi`` only the (inclusive) box has it and the rest is BORDER."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, BORDER if roi is not None else colour)
    if roi is not None:
        x1, y1, x2, y2 = roi
        image.paste(colour, (x1, y1, x2 + 1, y2 + 1))
    image.save(path)


def corrupt(path: Path) -> None:
    """Overwrite an image with bytes no decoder accepts (keeping the name)."""
    path.write_bytes(b"this is not an image\n" * 4)


def _gtsrb_row(filename: str, size: tuple[int, int], roi: Sequence[int], class_id: int) -> str:
    return ";".join(str(v) for v in (filename, *size, *roi, class_id))


def write_gtsrb(root: Path, class_ids: Sequence[int] = (0, 1, 2), tracks: int = 2, frames: int = 3,
                test_per_class: int = 2, gt_place: Optional[str] = "root", official_test_csv: bool = True) -> Path:
    """The official archives unpacked under ``root``: ``root/GTSRB/Final_Training``, ``Final_Test``.

    ``gt_place`` puts GT-final_test.csv in the data root ("root"), in GTSRB/ ("gtsrb"), beside the
    test images ("images"), or nowhere (None). ``official_test_csv`` also writes the class-less
    GT-final_test.test.csv that the test-images zip ships beside the images.
    """
    base = root / "GTSRB"
    number = 0
    for class_id in class_ids:
        class_dir = base / "Final_Training" / "Images" / f"{class_id:05d}"
        rows = [GTSRB_HEADER]
        for track in range(tracks):
            for frame in range(frames):
                filename, size = f"{track:05d}_{frame:05d}.ppm", frame_size(number)
                write_image(class_dir / filename, size, class_colour(class_id), roi_of(*size))
                rows.append(_gtsrb_row(filename, size, roi_of(*size), class_id))
                number += 1
        (class_dir / f"GT-{class_id:05d}.csv").write_text("\n".join(rows) + "\n")
    images = base / "Final_Test" / "Images"
    images.mkdir(parents=True, exist_ok=True)
    rows = [GTSRB_HEADER]
    # Interleave classes as in the real test set (random class order, numbered files).
    for index in range(test_per_class * len(class_ids)):
        class_id, filename, size = class_ids[index % len(class_ids)], f"{index:05d}.ppm", frame_size(index)
        write_image(images / filename, size, class_colour(class_id), roi_of(*size))
        rows.append(_gtsrb_row(filename, size, roi_of(*size), class_id))
    if official_test_csv:
        (images / "GT-final_test.test.csv").write_text(
            "\n".join(";".join(row.split(";")[:-1]) for row in rows) + "\n")
    if gt_place is not None:
        folder = {"root": root, "gtsrb": base, "images": images}[gt_place]
        (folder / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return root


def write_gtsrb_kaggle(root: Path, class_ids: Sequence[int] = (0, 1, 2), tracks: int = 2, frames: int = 3,
                       test_per_class: int = 2) -> Path:
    """The Kaggle mirror: ``Train.csv``/``Test.csv`` with paths like Train/20/00020_00000_00000.png."""
    rows, number = [KAGGLE_HEADER], 0
    for class_id in class_ids:
        for track in range(tracks):
            for frame in range(frames):
                relative, size = f"Train/{class_id}/{class_id:05d}_{track:05d}_{frame:05d}.png", frame_size(number)
                write_image(root / relative, size, class_colour(class_id), roi_of(*size))
                rows.append(",".join(str(v) for v in (*size, *roi_of(*size), class_id, relative)))
                number += 1
    (root / "Train.csv").write_text("\n".join(rows) + "\n")
    rows = [KAGGLE_HEADER]
    for index in range(test_per_class * len(class_ids)):
        class_id, relative, size = class_ids[index % len(class_ids)], f"Test/{index:05d}.png", frame_size(index)
        write_image(root / relative, size, class_colour(class_id), roi_of(*size))
        rows.append(",".join(str(v) for v in (*size, *roi_of(*size), class_id, relative)))
    (root / "Test.csv").write_text("\n".join(rows) + "\n")
    return root


def write_asl(root: Path, classes: Sequence[str] = ("A", "B", "del"), per_class: int = 3, nested: bool = True,
              test_classes: Optional[Sequence[str]] = None, frame_step: int = 1) -> Path:
    """Kaggle's ASL Alphabet: ``asl_alphabet_train[/asl_alphabet_train]/<class>/<class><n>.jpg`` and
    ``asl_alphabet_test[/asl_alphabet_test]/<class>_test.jpg``; like the real set, the test split
    has no ``del`` image unless ``test_classes`` says otherwise. Frame numbers n are 1, 1 + frame_step, ...:
    a step of ASL_FRAME_BLOCK puts every image in a block of its own (the split holds out whole blocks)."""
    train = root / "asl_alphabet_train" / ("asl_alphabet_train" if nested else "")
    test = root / "asl_alphabet_test" / ("asl_alphabet_test" if nested else "")
    for index, name in enumerate(sorted(classes)):
        for n in range(per_class):
            write_image(train / name / f"{name}{1 + n * frame_step}.jpg", (40, 40), class_colour(index))
    names = sorted(classes)
    for name in (test_classes if test_classes is not None else [c for c in classes if c != "del"]):
        write_image(test / f"{name}_test.jpg", (40, 40), class_colour(names.index(name) if name in names else 9))
    return root


def write_imagefolder(root: Path, classes: Sequence[str] = ("cat", "dog"), per_class: int = 3,
                      split_dirs: bool = True, with_test: bool = True) -> Path:
    """``root/train/<class>/*.png`` (+ ``root/test/<class>/*.png``), or plain ``root/<class>/*.png``."""
    train = root / "train" if split_dirs else root
    for index, name in enumerate(sorted(classes)):
        for n in range(per_class):
            write_image(train / name / f"{n:03d}.png", (36, 30), class_colour(index))
            if split_dirs and with_test:
                write_image(root / "test" / name / f"{n:03d}.png", (36, 30), class_colour(index))
    return root
