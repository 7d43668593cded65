"""What the registry knows of a layout: how to read each split and how to recognise it under a root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from train.data.records import Records


@dataclass(frozen=True)
class Reader:
    """One data-set layout (``data.format``)."""

    name: str
    train: Callable[[Path], Records]
    """Records of the training split under a root (already checked to be a folder)."""
    test: Callable[[Path], Records]
    """Records of the test split, labelled with the training split's class indices."""
    detect: Callable[[Path], bool]
    """Whether a root looks like this layout (``data.format: auto``); cheap, reads no images."""
    looks_like: str
    """What :attr:`detect` looks for, as the error for an unrecognised root lists it."""
