"""Decoding one image file into the cache's pixels: RGB, optionally cropped to its sign box, resized."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

# The conversion to RGB that predict.py and the server use too (16-bit scaled, not clipped); numpy + Pillow only.
from artifact.preprocess import to_rgb

# Errors PIL raises for unreadable, truncated or corrupt files; anything else is a bug and propagates.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


def load_image(path: Path, roi: Optional[Sequence[int]], size: int, roi_crop: bool) -> np.ndarray:
    """Decode ``path`` to (size, size, 3) uint8 RGB: optionally cropped to ``roi``, then resized.

    The resize is PIL bilinear, which widens its filter when shrinking (antialiased). Raises one of
    :data:`IMAGE_ERRORS` for an unreadable file, a pixel mode with no 8-bit scale (``artifact.preprocess.to_rgb``)
    or a box outside the image.
    """
    with Image.open(path) as image:
        if not (roi_crop and roi is not None):
            # JPEG can decode at 1/2, 1/4, 1/8 scale directly: much faster for large photos, and
            # draft never goes below the requested size, so the bilinear resize still does the rest.
            image.draft("RGB", (size, size))
        image = to_rgb(image, str(path))  # ImageRejected is a ValueError, one of IMAGE_ERRORS
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
