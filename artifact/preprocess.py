"""Turn image files or bytes into the exported model's input, exactly as training did (numpy + Pillow only).

Training (``train.data.load_image``) decodes each image with Pillow, converts it to RGB, crops it to
the sign's box when the data set has boxes and ``data.roi_crop`` is on, and resizes it to the square
input size with Pillow's bilinear filter (which widens when shrinking, i.e. antialiases); for sets
without boxes it first lets JPEG decode at a reduced scale (``Image.draft``), never below the input
size. The loop then divides by 255 and normalises per channel. :class:`Preprocessing` repeats the
same steps from the settings ``model.json`` records, so ``predict.py`` and the Serve replicas need
neither torch nor this project's training code. Cropping to the sign's box is the caller's job.

Bad input raises :class:`ImageRejected` with a one-line message and an HTTP status for the server.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image

RESAMPLING = {"bilinear": Image.Resampling.BILINEAR}
"""Resize filters by the name model.json records (training uses bilinear only)."""

# Errors Pillow raises for unreadable, truncated or corrupt data (as train.data.IMAGE_ERRORS).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)

IMAGE_EXTENSIONS = (".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File name endings taken as images when a folder is given (as train.data.IMAGE_EXTENSIONS)."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest decoded image accepted, width x height (a 40 MP photo decodes to ~120 MB of RGB)."""


class ImageRejected(ValueError):
    """Input that is not a usable image; ``status`` is the HTTP status a server answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
"""Pillow's 16-bit grayscale modes (16-bit PNG, PGM and TIFF); 32-bit ``I`` holds the same values in older Pillows."""


def to_rgb(image: Image.Image, name: str = "image") -> Image.Image:
    """8-bit RGB of a decoded image: the one conversion training (``train.data.load_image``), ``predict.py``
    and the server share, so a mode is read the same way everywhere.

    Pillow's ``convert("RGB")`` clips 16- and 32-bit grayscale values to 0..255 instead of scaling them: a
    16-bit PNG (mode ``I;16``, values up to 65535) becomes a white square, silently. Here 16-bit values are
    scaled to 8 bits (v * 255 / 65535, rounded); 32-bit integer pixels (``I``) are taken as 16-bit when they
    fit 0..65535 (what older Pillows make of a 16-bit PNG) and refused otherwise, as are floating-point
    pixels (``F``): neither has an 8-bit scale to go by. Every other mode Pillow reads (1, L, LA, P, PA, RGB,
    RGBA, CMYK, YCbCr, HSV, ...) goes through ``convert("RGB")`` as before (alpha dropped); a mode it cannot
    convert is refused. Refusals are :class:`ImageRejected`, one line.
    """
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image)  # uint16 in the file's byte order (I;16*), or int32 (I)
        if mode == "I" and values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
            raise ImageRejected(f"{name}: 32-bit integer pixels (mode I) outside 0..65535 have no 8-bit scale; "
                                "save it as an 8- or 16-bit image")
        gray = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")  # 2-D uint8: mode L
    if mode == "F":
        raise ImageRejected(f"{name}: floating-point pixels (mode F) have no 8-bit scale; save it as an 8- or "
                            "16-bit image")
    try:
        return image.convert("RGB")
    except ValueError:  # Pillow names modes it cannot convert to RGB this way (e.g. LAB)
        raise ImageRejected(f"{name}: Pillow cannot convert its pixel mode {mode} to RGB; save it as RGB or "
                            "grayscale") from None


def too_many_pixels(name: str, error: Image.DecompressionBombError, max_pixels: int) -> str:
    """The --max-pixels line for an image Pillow itself refused on opening (over twice ``Image.MAX_IMAGE_PIXELS``,
    before :meth:`Preprocessing.decode` sees its size). Pillow's own text speaks of a "DOS attack"; its pixel
    count ("Image size (N pixels) exceeds limit of M pixels, ...") is kept."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(found.group(1))} pixels" if found else "too many pixels"
    pillow = 2 * int(Image.MAX_IMAGE_PIXELS or 0)
    if pillow and max_pixels > pillow:  # --max-pixels was raised past what Pillow opens at all
        return f"{name}: {size}, above Pillow's limit of {pillow} pixels (twice PIL.Image.MAX_IMAGE_PIXELS)"
    return f"{name}: {size}, above the limit of {max_pixels} pixels"


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the model's input (the ``input`` section of model.json)."""

    width: int
    """Input width in pixels."""
    height: int
    """Input height in pixels."""
    mean: tuple[float, float, float]
    """Per-channel mean (R, G, B) subtracted after scaling to [0, 1]."""
    std: tuple[float, float, float]
    """Per-channel standard deviation (R, G, B) divided by after subtracting the mean."""
    resize: str = "bilinear"
    """Pillow resampling filter of the resize to (width, height); aspect ratio is not kept."""
    jpeg_draft: bool = False
    """Let JPEG decode at a reduced scale first (Image.draft), as training did for sets without sign boxes."""

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Preprocessing":
        """From model.json's ``input`` section (KeyError/ValueError/TypeError when it is malformed)."""
        resize = spec["resize"]
        if resize["method"] not in RESAMPLING:
            raise ValueError(f"resize method {resize['method']!r} (supported: {', '.join(RESAMPLING)})")
        if spec["channel_order"] != "RGB" or spec["layout"] != "NCHW" or float(spec["scale"]) != 1 / 255:
            raise ValueError("input must be RGB, NCHW, scale 1/255")
        mean, std = tuple(float(v) for v in spec["mean"]), tuple(float(v) for v in spec["std"])
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std need 3 values")
        return cls(int(spec["width"]), int(spec["height"]), mean, std, resize["method"], bool(resize["jpeg_draft"]))

    def decode(self, source: Union[bytes, str, Path], max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str = "image") -> np.ndarray:
        """(height, width, 3) uint8 RGB of an encoded image (bytes or a file path), resized as in training."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            if not len(source):
                raise ImageRejected(f"{name}: empty (0 bytes)")
            stream: Any = io.BytesIO(source)
        else:
            stream = source
        try:
            image = Image.open(stream)
        except Image.DecompressionBombError as error:
            raise ImageRejected(too_many_pixels(name, error, max_pixels), 413) from None
        except DECODE_ERRORS:
            raise ImageRejected(f"{name}: not an image (Pillow cannot identify it; PNG, JPEG, PPM, BMP, GIF, "
                                f"TIFF and WebP are read)") from None
        with image:
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise ImageRejected(f"{name}: {image.width}x{image.height} = {pixels} pixels, above the limit of "
                                    f"{max_pixels} pixels", 413)
            try:
                if self.jpeg_draft:
                    image.draft("RGB", (self.width, self.height))
                rgb = to_rgb(image, name)
                resized = rgb.resize((self.width, self.height), RESAMPLING[self.resize])
            except ImageRejected:
                raise
            except DECODE_ERRORS as error:
                detail = " ".join(str(error).split()) or type(error).__name__
                raise ImageRejected(f"{name}: truncated or corrupt {image.format or ''} image ({detail})") from None
            return np.asarray(resized, dtype=np.uint8)

    def normalize(self, pixels: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        """(N, 3, height, width) float32 model input from (N, height, width, 3) uint8 RGB images."""
        batch = np.asarray(pixels if isinstance(pixels, np.ndarray) else np.stack(pixels))
        if batch.shape[1:] != (self.height, self.width, 3) or batch.dtype != np.uint8:
            raise ValueError(f"expected (N, {self.height}, {self.width}, 3) uint8, got {batch.shape} {batch.dtype}")
        # The training loop computes float32 pixel / 255.0, then (x - mean) / std: the same float32 steps here.
        x = batch.astype(np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
