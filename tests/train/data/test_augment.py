"""train.data.augment with real Kornia ops on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from train.config import AugmentConfig
from train.data.augment import BatchAugment, RandomHueRotation, build_augment

OFF = dict(geometric=0.0, photometric=0.0, erasing=0.0, hflip=False)
ALL_ON = dict(geometric=1.0, photometric=1.0, erasing=1.0, p=1.0, hflip=True)


def _images(batch: int = 8, height: int = 32, width: int = 32, seed: int = 7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator)


def _seeded(augment: nn.Module, images: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return augment(images)


def test_all_zero_is_exact_identity():
    images = _images()
    assert isinstance(build_augment(AugmentConfig(**OFF)), nn.Identity)
    assert torch.equal(BatchAugment(AugmentConfig(**OFF))(images), images)
    assert isinstance(build_augment(AugmentConfig(geometric=0.5, photometric=0.5, erasing=0.0, p=0.0)), nn.Identity)


def test_zero_strength_removes_its_group():
    ops = [type(op).__name__ for op in BatchAugment(AugmentConfig(**{**OFF, "geometric": 0.5})).ops]
    assert ops == ["RandomAffine", "RandomPerspective"]
    ops = [type(op).__name__ for op in BatchAugment(AugmentConfig(**{**OFF, "photometric": 0.5})).ops]
    assert ops == ["ColorJitter", "RandomHueRotation", "RandomGaussianBlur", "RandomGaussianNoise"]


def test_same_seed_same_batch_different_seed_different():
    augment = build_augment(AugmentConfig(**ALL_ON))
    images = _images()
    first = _seeded(augment, images, 0)
    assert torch.equal(first, _seeded(augment, images, 0))
    assert not torch.equal(first, _seeded(augment, images, 1))


@pytest.mark.parametrize("dtype, height, width, p", [(torch.float32, 32, 32, 1.0), (torch.float32, 24, 40, 0.5),
                                                     (torch.float16, 16, 16, 1.0)])
def test_output_shape_dtype_and_range(dtype, height, width, p):
    images = _images(height=height, width=width).to(dtype)
    out = _seeded(build_augment(AugmentConfig(**{**ALL_ON, "p": p})), images, 3)
    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("group", [dict(geometric=1.0), dict(photometric=1.0), dict(erasing=1.0),
                                   dict(hflip=True)])
def test_each_group_changes_the_image(group):
    images = _images()
    out = _seeded(build_augment(AugmentConfig(**{**OFF, "p": 1.0, **group})), images, 0)
    changed = (out - images).abs().flatten(1).amax(1) > 1e-3
    # hflip has p = 0.5 per image; every other op at p = 1 must change every image.
    assert changed.any() if "hflip" in group else changed.all()


def test_hue_rotation_keeps_greys_and_turns_red_towards_yellow():
    grey_and_red = torch.tensor([[0.4, 0.4, 0.4], [0.7, 0.3, 0.3]]).T.reshape(1, 3, 1, 2)
    rotation = RandomHueRotation(hue=(0.05, 0.05), p=1.0)  # +18 degrees
    out = rotation(grey_and_red)
    assert torch.allclose(out[0, :, 0, 0], grey_and_red[0, :, 0, 0], atol=1e-6)
    red = out[0, :, 0, 1]
    assert red[1] > 0.3 + 0.05 and red[2] < 0.3  # green rises, blue falls: red turns towards orange
    assert torch.isclose(red.mean(), grey_and_red[0, :, 0, 1].mean(), atol=1e-6)  # intensity kept (no clamp)


def test_strength_scales_the_change():
    images = _images(batch=32)
    weak, strong = (_seeded(build_augment(AugmentConfig(**{**OFF, "geometric": s, "p": 1.0})), images, 0)
                    for s in (0.1, 1.0))
    assert (weak - images).abs().mean() < (strong - images).abs().mean()
