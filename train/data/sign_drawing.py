"""Drawing synthetic traffic signs: the classes (plate shape, colour scheme, glyph), one training track's frames
and one test photo, each from its own seeded ``numpy.random.Generator``; :mod:`train.data.synthetic` writes them to
disk.

A class is a plate shape (circle, triangle, octagon, diamond, square) with a colour scheme and a glyph.
The first 25 classes each have their own shape/colour plate; classes 25..42 reuse those plates and
differ from their plate-mates only in the glyph (like GTSRB's speed-limit signs). A track is one physical sign
(its own fading, tilt, viewing squeeze, lighting and background) seen in frames of growing size, the
small early frames blurrier, as a car approaches it; frames are the sign plus a ~10 % border like
GTSRB, so their width and height vary. Test images are independent signs drawn from a wider
distribution than training (more rotation, harsher lighting, more blur, a looser border), so a bit of
augmentation pays off on the test set, while validation (held-out training tracks) stays in-distribution.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from train.config import SyntheticConfig

GENERATOR_VERSION = 1  # in every set's marker: raise it when drawing changes, so sets written before are rewritten
SHAPES = ("circle", "triangle", "octagon", "diamond", "square")
# (name, plate fill, rim, glyph) as RGB.
SCHEMES = (
    ("red-rim", (236, 236, 230), (200, 26, 32), (24, 24, 24)),
    ("blue", (28, 84, 190), (236, 236, 236), (246, 246, 246)),
    ("yellow", (246, 202, 24), (28, 28, 28), (28, 28, 28)),
    ("red", (200, 26, 32), (240, 240, 240), (246, 246, 246)),
    ("green", (22, 130, 72), (236, 236, 236), (246, 246, 246)),
)
# One glyph per class; classes 25.. reuse a plate of classes 0..24 and differ from it only in the glyph.
GLYPHS = "18XOT5H2LVE4SAZ3KC9PNU6YWFRGMJ0DB=7QI&#%<>+"
PLATE_PX = 128  # plates are drawn at this size and scaled down, which antialiases their edges
# A photo: (RGB image, inclusive sign box x1, y1, x2, y2).
Photo = tuple[Image.Image, list[int]]
Point = tuple[float, float]
SPLIT_CODES = {"train": 0, "test": 1, "order": 2}


@dataclass(frozen=True)
class SignClass:
    shape: str
    scheme: str
    fill: tuple[int, int, int]
    rim: tuple[int, int, int]
    ink: tuple[int, int, int]
    glyph: str

    @property
    def name(self) -> str:
        return f"{self.scheme} {self.shape} '{self.glyph}'"


@dataclass(frozen=True)
class Look:
    """Ranges one split draws its signs and frames from."""

    tilt_deg: float          # |rotation| of a sign, degrees
    frame_tilt_deg: float    # extra per-frame rotation jitter, degrees
    brightness: tuple[float, float]  # multiplier of the whole frame
    blur_px: float           # extra Gaussian blur radius, pixels at frame resolution
    border: tuple[float, float]      # border on each side, as a fraction of the sign size


TRAIN_LOOK = Look(tilt_deg=6.0, frame_tilt_deg=2.0, brightness=(0.6, 1.25), blur_px=0.5, border=(0.08, 0.14))
TEST_LOOK = Look(tilt_deg=16.0, frame_tilt_deg=0.0, brightness=(0.4, 1.5), blur_px=1.0, border=(0.08, 0.3))


def sign_classes(count: int) -> list[SignClass]:
    """The first ``count`` classes: a distinct (shape, colour scheme) plate each up to 25, then glyphs only."""
    classes = []
    for k in range(count):
        combo = k % (len(SHAPES) * len(SCHEMES))
        # (combo + combo // 5) % 5 walks all 25 shape/scheme pairs, changing both at every step.
        name, fill, rim, ink = SCHEMES[(combo + combo // len(SHAPES)) % len(SCHEMES)]
        classes.append(SignClass(SHAPES[combo % len(SHAPES)], name, fill, rim, ink, GLYPHS[k]))
    return classes


# ----------------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _outline(shape: str, size: int) -> tuple[list[Point], Point, float]:
    """(polygon points, glyph centre, glyph scale) of a plate filling a size x size canvas."""
    c, r = size / 2, size / 2 - 2
    if shape == "triangle":
        # Equilateral, pointing up; its centroid (where the glyph goes) lies below the canvas centre.
        h = r * 1.5
        top = c - h * 2 / 3 + r * 0.25
        points = [(c, top), (c + h / math.sqrt(3), top + h), (c - h / math.sqrt(3), top + h)]
        return points, (c, top + h * 2 / 3), 0.5
    corners, start = {"circle": (48, 0.0), "octagon": (8, 22.5), "diamond": (4, 90.0), "square": (4, 45.0)}[shape]
    radius = r if shape != "square" else r * 0.95
    points = [(c + radius * math.cos(math.radians(start + 360 * i / corners)),
               c - radius * math.sin(math.radians(start + 360 * i / corners))) for i in range(corners)]
    return points, (c, c), {"diamond": 0.62, "square": 0.8}.get(shape, 0.85)


def _scaled(points: Sequence[Point], centre: Point, factor: float) -> list[Point]:
    return [(centre[0] + (x - centre[0]) * factor, centre[1] + (y - centre[1]) * factor) for x, y in points]


def _plate(sign: SignClass, rng: np.random.Generator) -> Image.Image:
    """One physical sign, RGBA at PLATE_PX: faded colours, rim, glyph of varying weight and position."""
    fade = rng.uniform(0.8, 1.05)
    fill, rim, ink = (tuple(int(min(255, v * fade * rng.uniform(0.94, 1.06))) for v in colour)
                      for colour in (sign.fill, sign.rim, sign.ink))
    image = Image.new("RGBA", (PLATE_PX, PLATE_PX), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points, centre, glyph_scale = _outline(sign.shape, PLATE_PX)
    middle = (sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points))
    draw.polygon(points, fill=rim + (255,))
    draw.polygon(_scaled(points, middle, 0.76), fill=fill + (255,))
    font = _font(int(PLATE_PX * 0.42 * glyph_scale))
    offset = rng.normal(0.0, 1.5, size=2)  # printing offset, pixels at PLATE_PX
    draw.text((centre[0] + offset[0], centre[1] + offset[1]), sign.glyph, fill=ink + (255,), font=font,
              anchor="mm", stroke_width=int(rng.integers(1, 4)), stroke_fill=ink + (255,))
    return image


def _background(width: int, height: int, colour: np.ndarray, texture: float,
                rng: np.random.Generator) -> Image.Image:
    """Scene behind the sign: a base colour with blotchy low-frequency texture, fine noise and clutter."""
    coarse = rng.normal(0.0, 1.0, size=(max(2, height // 6), max(2, width // 6), 3))
    coarse_image = Image.fromarray(np.clip(128 + 40 * coarse, 0, 255).astype(np.uint8))
    blotches = np.asarray(coarse_image.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) - 128
    fine = rng.normal(0.0, 6.0, size=(height, width, 3))
    pixels = np.clip(colour + texture * blotches + fine, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 4))):  # poles, branches, building edges
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.normal(0, width / 2), y0 + rng.normal(0, height / 2)
        draw.line([(x0, y0), (x1, y1)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
                  width=int(rng.integers(1, max(2, width // 8))))
    return image


def _frame(plate: Image.Image, sign_px: float, tilt_deg: float, squeeze: float, scene: dict[str, Any],
           look: Look, blur_px: float, brightness: float, rng: np.random.Generator) -> Photo:
    """One photo of ``plate``: (RGB frame, inclusive ROI x1, y1, x2, y2)."""
    warped = plate.resize((max(8, round(PLATE_PX * squeeze)), PLATE_PX), Image.Resampling.BICUBIC)
    warped = warped.rotate(tilt_deg, Image.Resampling.BICUBIC, expand=True)
    scale = sign_px / PLATE_PX
    sign = warped.resize((max(4, round(warped.width * scale)), max(4, round(warped.height * scale))),
                         Image.Resampling.LANCZOS)
    alpha = np.asarray(sign.getchannel("A"))
    ys, xs = np.nonzero(alpha > 127)
    box_w, box_h = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    # GTSRB frames hold the sign plus a border of about 10 % of its size (at least a few pixels).
    left, right, top, bottom = (max(2, round(rng.uniform(*look.border) * max(box_w, box_h))) for _ in range(4))
    width, height = box_w + left + right, box_h + top + bottom
    colour = scene["colour"] + rng.normal(0.0, 12.0, size=3)  # the scene shifts as the car moves
    image = _background(width, height, colour.astype(np.float32), scene["texture"], rng)
    x0, y0 = left - int(xs.min()), top - int(ys.min())
    image.paste(sign.convert("RGB"), (x0, y0), sign.getchannel("A"))
    roi = [left, top, left + box_w - 1, top + box_h - 1]
    if blur_px > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(blur_px))
    return _photometric(image, brightness, rng), roi


def _photometric(image: Image.Image, brightness: float, rng: np.random.Generator) -> Image.Image:
    """Lighting and sensor: brightness, contrast, colour cast, then Gaussian noise."""
    pixels = np.asarray(image, dtype=np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.75, 1.15) + mean
    pixels = pixels * brightness * rng.uniform(0.92, 1.08, size=3)
    pixels += rng.normal(0.0, rng.uniform(1.0, 6.0), size=pixels.shape)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def _scene(rng: np.random.Generator) -> dict[str, Any]:
    """Background of one sign: mostly muted natural tones (grey, foliage, sky), sometimes any colour.

    Muted tones keep the plate the salient thing: with only a few tracks per class, loud background
    colours shared by a track's frames would be an easy shortcut that fails on held-out tracks.
    """
    if rng.uniform() < 0.2:
        colour = rng.integers(0, 256, size=3).astype(np.float32)
    else:
        colour = rng.uniform(40, 210) + rng.normal(0.0, 22.0, size=3)
    return {"colour": colour.astype(np.float32), "texture": float(rng.uniform(0.3, 1.3))}


# ----------------------------------------------------------------------------- sets


def _sign_px(cfg: SyntheticConfig, progress: float, look: Look) -> float:
    """Sign size in pixels: from ~45 % to 100 % of the largest sign as the car approaches (progress 0..1)."""
    largest = cfg.frame_size / (1 + 2 * look.border[0])
    return largest * (0.45 + 0.55 * progress)


def split_rng(cfg: SyntheticConfig, split: str, *ids: int) -> np.random.Generator:
    """The generator of one (split, ids) draw: a track, a test photo or the test order, whatever else is drawn."""
    return np.random.default_rng([cfg.seed, SPLIT_CODES[split], *ids])


def track_frames(cfg: SyntheticConfig, sign: SignClass, class_id: int, track: int) -> list[Photo]:
    """The frames of one training track: one physical sign, growing, sharpening, in one scene."""
    rng = split_rng(cfg, "train", class_id, track)
    plate = _plate(sign, rng)
    tilt, squeeze = rng.uniform(-TRAIN_LOOK.tilt_deg, TRAIN_LOOK.tilt_deg), rng.uniform(0.8, 1.0)
    brightness, scene = rng.uniform(*TRAIN_LOOK.brightness), _scene(rng)
    frames = []
    for frame in range(cfg.frames_per_track):
        progress = frame / (cfg.frames_per_track - 1) if cfg.frames_per_track > 1 else 1.0
        size = _sign_px(cfg, progress, TRAIN_LOOK) * rng.uniform(0.95, 1.05)
        blur = rng.uniform(0, TRAIN_LOOK.blur_px) + 0.6 * (1 - progress)  # far frames are softer
        frames.append(_frame(plate, size, tilt + rng.uniform(-1, 1) * TRAIN_LOOK.frame_tilt_deg, squeeze, scene,
                             TRAIN_LOOK, blur, brightness * rng.uniform(0.92, 1.08), rng))
    return frames


def photo_for_test_set(cfg: SyntheticConfig, sign: SignClass, class_id: int, index: int) -> Photo:
    """One independent test photo, drawn from the wider test distribution."""
    rng = split_rng(cfg, "test", class_id, index)
    plate = _plate(sign, rng)
    progress = rng.uniform(0.0, 1.0)
    tilt = rng.uniform(-TEST_LOOK.tilt_deg, TEST_LOOK.tilt_deg)
    squeeze = rng.uniform(0.7, 1.0)  # viewed more obliquely than training signs (0.8..1)
    blur = rng.uniform(0, TEST_LOOK.blur_px) + 0.6 * (1 - progress)
    return _frame(plate, _sign_px(cfg, progress, TEST_LOOK), tilt, squeeze, _scene(rng), TEST_LOOK, blur,
                  rng.uniform(*TEST_LOOK.brightness), rng)
