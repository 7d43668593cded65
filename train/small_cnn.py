"""``small_cnn``: the configurable CNN the search can pick instead of a timm model (no pretrained weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train.config import CNNConfig


class _ConvBlock(nn.Module):
    """conv -> batch norm -> ReLU -> 2x2 pool, with guards that keep the feature map at least 1 px."""

    def __init__(self, in_channels: int, out_channels: int, cfg: CNNConfig):
        super().__init__()
        padding = cfg.kernel_size // 2 if cfg.padding is None else cfg.padding
        self.conv = nn.Conv2d(in_channels, out_channels, cfg.kernel_size, cfg.stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "none": nn.Identity()}[cfg.pool]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(self._pad_to_kernel(x))))
        # Pool only while the map is larger than 2 px, so deep stacks on small images end at >= 1 px
        # (e.g. 16 px, 8 blocks: 16 -> 8 -> 4 -> 2 -> 2 ...) instead of failing on an empty map.
        if min(x.shape[-2:]) > 2:
            x = self.pool(x)
        return x

    def _pad_to_kernel(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad a map smaller than the kernel (after the conv's own padding) so the conv yields 1 px."""
        kernel, pad = self.conv.kernel_size[0], self.conv.padding[0]
        short_h = max(0, kernel - (x.shape[-2] + 2 * pad))
        short_w = max(0, kernel - (x.shape[-1] + 2 * pad))
        if short_h or short_w:
            x = F.pad(x, (short_w // 2, short_w - short_w // 2, short_h // 2, short_h - short_h // 2))
        return x


class SmallCNN(nn.Module):
    """The configurable CNN (``small_cnn``): ``blocks`` conv blocks -> global average pool -> dropout -> linear.

    Block ``i`` has ``width * 2**i`` channels. Works for any input of at least 16 px (in fact any >= 1 px)
    with every valid :class:`CNNConfig`: pooling stops once the map is <= 2 px, and a map smaller than
    the kernel is zero-padded so a stride or padding-0 conv never produces an empty map.
    """

    def __init__(self, cfg: CNNConfig, num_classes: int, in_channels: int = 3):
        super().__init__()
        widths = [cfg.width * 2 ** i for i in range(cfg.blocks)]
        self.features = nn.Sequential(*(_ConvBlock(c_in, c_out, cfg)
                                        for c_in, c_out in zip([in_channels] + widths[:-1], widths)))
        self.num_features = widths[-1]
        self.num_classes = num_classes
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def get_classifier(self) -> nn.Module:
        """The head, named like timm's method so freezing treats both model kinds alike."""
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.global_pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(features))
