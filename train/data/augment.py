"""Batch augmentation with Kornia, on the training device, built from :class:`AugmentConfig`.

Whole batches are augmented at once (one kernel launch per op on a GPU, vectorised on CPU) instead of
per-sample PIL/torchvision transforms in DataLoader workers. Each group has one strength knob s in 0..1:

* geometric (s = ``geometric``): RandomAffine (rotation up to 30 deg * s, translation up to 15 % * s of the
  side, scale 1 +- 0.3 * s, shear up to 10 deg * s) and RandomPerspective (corner distortion 0.3 * s);
* photometric (s = ``photometric``): ColorJitter (brightness/contrast/saturation factors 1 +- 0.4 * s),
  :class:`RandomHueRotation` (hue shift up to 0.05 * s of the hue circle), RandomGaussianBlur (sigma
  0.1 .. 1.5 * s px) and additive RandomGaussianNoise (std 0.05 * s in [0, 1] intensity units);
* RandomErasing of one rectangle (2-33 % of the area), with probability ``erasing``.

Every geometric/photometric op is applied to each image independently with probability ``p``. A strength of
0 removes its group's ops entirely, so an all-zero config (and no hflip) is the exact identity. Randomness
comes from torch's global RNG: ``torch.manual_seed(s); aug(x)`` gives the same batch every time.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from train.config import AugmentConfig

MAX_ROTATION_DEG = 30.0
MAX_TRANSLATE = 0.15  # fraction of the image side
MAX_SCALE = 0.3  # relative zoom in/out
MAX_SHEAR_DEG = 10.0
MAX_PERSPECTIVE = 0.3  # kornia distortion_scale: corner displacement as a fraction of the half-side
MAX_COLOR = 0.4  # brightness, contrast, saturation factor range 1 +- this
MAX_HUE = 0.05  # fraction of the hue circle (kornia/torchvision hue units, max 0.5)
MAX_BLUR_SIGMA = 1.5  # pixels
MIN_BLUR_SIGMA = 0.1  # kornia rejects sigma 0; 0.1 px is visually no blur
MAX_NOISE_STD = 0.05  # intensity units of a [0, 1] image
HFLIP_P = 0.5  # a flip is a symmetry: 0.5 gives both orientations equally, whatever cfg.p says


class RandomHueRotation(K.RandomHue):
    """Hue shift as a rotation of RGB space about the grey axis: one 3x3 matrix per image.

    Kornia's RandomHue/ColorJitter hue step goes through HSV and back (~20 elementwise passes); on CPU
    it was about half of the whole pipeline's time (9 of 20 ms per batch of 64 at 32 px). Rotating
    about (1, 1, 1) by the same angle (2 pi * drawn turns) is the usual "hue-rotate" colour matrix: greys
    and each pixel's mean intensity stay exactly as they were (before the [0, 1] clamp), and colours turn
    around the colour wheel in HSV's direction (red -> yellow for a positive shift); saturated colours
    turn somewhat less than on HSV's hexcone, as they meet the clamp. Parameter drawing, probability
    gating and seeding are kornia's RandomHue's.
    """

    def apply_transform(self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any],
                        transform: Optional[Tensor] = None) -> Tensor:
        # The B tiny matrices are built where the drawn factors already are (moving them to the CPU would
        # wait for the GPU on every batch), in float64 except on MPS, which has none.
        precise = torch.float32 if input.device.type == "mps" else torch.float64
        turns = params["hue_factor"].to(device=input.device, dtype=precise)
        rotation = _grey_axis_rotation(turns).to(dtype=input.dtype)
        return torch.einsum("bij,bjhw->bihw", rotation, input).clamp(0.0, 1.0)


def _grey_axis_rotation(turns: Tensor) -> Tensor:
    """(B, 3, 3) Rodrigues rotations R = cos I + sin [k]x + (1 - cos) k k^T about k = (1, 1, 1) / sqrt(3)."""
    angle = 2 * math.pi * turns
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    eye, cross, outer = _rotation_terms(turns.device, turns.dtype)
    return cos * eye + sin * cross + (1 - cos) * outer


@functools.lru_cache(maxsize=8)
def _rotation_terms(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """I, [k]x and k k^T on ``device``, made once: a fresh host->GPU copy per batch would wait for the GPU."""
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=dtype) / math.sqrt(3)  # [k]x v = k x v
    outer = torch.full((3, 3), 1 / 3, dtype=dtype)  # k k^T
    return torch.eye(3, dtype=dtype, device=device), cross.to(device), outer.to(device)


def geometric_ops(s: float, p: float) -> list[nn.Module]:
    """Affine + perspective warps at strength ``s``; empty at s = 0. Uncovered corners are filled with 0."""
    if s <= 0 or p <= 0:
        return []
    return [
        K.RandomAffine(degrees=MAX_ROTATION_DEG * s, translate=(MAX_TRANSLATE * s, MAX_TRANSLATE * s),
                       scale=(1 - MAX_SCALE * s, 1 + MAX_SCALE * s), shear=MAX_SHEAR_DEG * s, p=p),
        K.RandomPerspective(distortion_scale=MAX_PERSPECTIVE * s, p=p),
    ]


def photometric_ops(s: float, p: float) -> list[nn.Module]:
    """Colour jitter, hue rotation, blur and noise at strength ``s``; empty at s = 0.

    ColorJitter (not ColorJiggle) because it uses torchvision's formulas (multiplicative brightness,
    blends for contrast/saturation), so a strength means the same as in a torchvision pipeline. Its
    hue step is replaced by the much cheaper :class:`RandomHueRotation` (same range, own draw of ``p``).
    """
    if s <= 0 or p <= 0:
        return []
    sigma_max = MAX_BLUR_SIGMA * s
    # Kernel covers +-2 sigma (95 % of the Gaussian's mass), odd and at least 3 px: 7 px at sigma 1.5.
    kernel = max(3, 2 * math.ceil(2 * sigma_max) + 1)
    return [
        K.ColorJitter(brightness=MAX_COLOR * s, contrast=MAX_COLOR * s, saturation=MAX_COLOR * s, p=p),
        RandomHueRotation(hue=(-MAX_HUE * s, MAX_HUE * s), p=p),
        K.RandomGaussianBlur(kernel_size=kernel, sigma=(min(MIN_BLUR_SIGMA, sigma_max), sigma_max), p=p),
        K.RandomGaussianNoise(mean=0.0, std=MAX_NOISE_STD * s, p=p),
    ]


def flip_ops(hflip: bool) -> list[nn.Module]:
    """Horizontal flip only on request: mirroring turns "keep left" into "keep right", reverses arrows and
    curve warnings among GTSRB's 43 classes, and mirrors hand shapes of the ASL alphabet (a left-handed
    signer's letter), so by default it would teach the model wrong labels."""
    return [K.RandomHorizontalFlip(p=HFLIP_P)] if hflip else []


def erasing_ops(probability: float) -> list[nn.Module]:
    """One black rectangle (occlusion) with the given probability; empty at 0."""
    return [K.RandomErasing(scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, p=probability)] if probability > 0 else []


class BatchAugment(nn.Module):
    """Augment a float (B, 3, H, W) batch in [0, 1] on its own device; same shape, device and dtype out.

    Ops run in float32 with autocast off (kornia's warps invert 3x3 matrices, which half precision does
    not support) and without autograd; the result is clamped to [0, 1], since noise can leave the range.
    """

    def __init__(self, cfg: AugmentConfig):
        super().__init__()
        ops = (flip_ops(cfg.hflip) + geometric_ops(cfg.geometric, cfg.p)
               + photometric_ops(cfg.photometric, cfg.p) + erasing_ops(cfg.erasing))
        self.ops = nn.Sequential(*ops)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if len(self.ops) == 0:
            return images
        with torch.autocast(device_type=images.device.type, enabled=False):
            out = self.ops(images.float())
        return out.clamp_(0.0, 1.0).to(images.dtype)


def build_augment(cfg: AugmentConfig) -> nn.Module:
    """:class:`BatchAugment` for ``cfg``, or ``nn.Identity`` when it would change nothing (no extra cost)."""
    augment = BatchAugment(cfg)
    return augment if len(augment.ops) else nn.Identity()
