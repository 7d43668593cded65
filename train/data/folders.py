"""Listing a data root: visible subfolders and image files, sorted (so class indices are stable), and the
``<folder>/<class>/*`` layout that the ASL and ImageFolder readers share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.data.records import DataError, int64

IMAGE_EXTENSIONS = (".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def subdirs(folder: Path) -> list[Path]:
    """Visible subfolders, sorted by name (so class indices are stable)."""
    try:
        return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: d.name)
    except OSError:
        return []


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)


def has_image(folder: Path) -> bool:
    try:
        return any(_is_image(p) for p in folder.iterdir())
    except OSError:
        return False


def class_dirs(folder: Path) -> list[Path]:
    dirs = list(subdirs(folder))
    if not dirs:
        raise DataError(f"{folder}: no class folders (expected {folder}/<class>/ with images)")
    return dirs


def read_class_folders(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Images of ``folder/<class>/*``: (paths, labels, sorted class names); empty classes are errors."""
    paths: list[Path] = []
    labels: list[int] = []
    dirs = class_dirs(folder)
    for label, class_dir in enumerate(dirs):
        images = images_in(class_dir)
        if not images:
            raise DataError(f"class folder {class_dir} is empty "
                            f"(no files ending in {', '.join(IMAGE_EXTENSIONS)})")
        paths += images
        labels += [label] * len(images)
    return paths, int64(labels), [d.name for d in dirs]
