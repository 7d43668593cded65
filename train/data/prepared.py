"""The data a trial trains on: :func:`prepare` (train/val arrays) and :func:`load_test` (the test split).

Both resolve the source (generating the synthetic set, detecting ``auto``), read its records, and open
or build the memory-mapped cache entry (:mod:`train.data.cache`); ``prepare`` then splits it, holding out
whole tracks or frame blocks (:mod:`train.data.split`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from train.config import DataConfig
from train.data import DataError, cache, check_root, detect_format, read_records
from train.data.split import train_val_split
from train.data.synthetic import ensure_synthetic


@dataclass
class ArraySet:
    """Images of one split with their labels and groups, index-aligned."""

    images: np.ndarray
    """(N, H, W, 3) uint8, memory-mapped from the cache (read-only)."""
    labels: np.ndarray
    """(N,) int64 class indices."""
    groups: np.ndarray
    """(N,) int64 track id (GTSRB) or per-image id otherwise."""

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class PreparedData:
    """Train and validation parts of the training split, ready for a trial."""

    train: ArraySet
    val: ArraySet
    class_names: list[str]
    fingerprint: str
    """Hash of the source files and pixel options; also the cache key."""
    format: str
    """The resolved layout (never ``auto``)."""
    cache_key: str
    """Name of the training split's cache entry: the driver hands it to the trials, which open the entry by
    it instead of listing and hashing the whole source tree again on every rank."""


def resolve_source(cfg: DataConfig) -> tuple[str, Path]:
    """(layout, absolute root): generates the synthetic set when asked for, detects ``auto``."""
    root = Path(cfg.root).expanduser().absolute()
    if cfg.format == "synthetic":
        ensure_synthetic(root, cfg.synthetic)
    root = check_root(root)
    return (detect_format(root) if cfg.format == "auto" else cfg.format), root


def prepare(cfg: DataConfig, cache_key: Optional[str] = None, decode_threads: Optional[int] = None) -> PreparedData:
    """Train/val arrays of the training split, building the cache on first use.

    With ``cache_key`` (what the driver's own ``prepare`` returned as ``PreparedData.cache_key``) a complete
    entry of that name is opened directly. A node that lacks it builds it once, under the entry's lock, and
    the source must still hash to that key: a trial never trains on other data than the driver checked.
    ``decode_threads``: threads of a build (default: the CPUs this process may use, at most 8); a worker
    passes what it reserved.
    """
    entry = cache.open_named(cfg, cache_key) if cache_key else None
    if entry is None:
        fmt, root = resolve_source(cfg)
        entry = cache.cached(cfg, fmt, "train", read_records(fmt, root, "train"), decode_threads)
        if cache_key and entry.path.name != cache_key:
            raise DataError(f"{root}: the data changed since the search started (cache entry {cache_key}, now "
                            f"{entry.path.name}); start a new search")
    cache.check_bad_images(entry, cfg)
    train_idx, val_idx = train_val_split(entry.labels, entry.groups, cfg.val_fraction, cfg.split_seed)
    train_images, val_images = cache.split_images(entry, train_idx, val_idx)
    return PreparedData(
        train=ArraySet(train_images, entry.labels[train_idx], entry.groups[train_idx]),
        val=ArraySet(val_images, entry.labels[val_idx], entry.groups[val_idx]),
        class_names=list(entry.meta["class_names"]),
        fingerprint=entry.meta["fingerprint"],
        format=entry.meta["format"],
        cache_key=entry.path.name,
    )


def load_test(cfg: DataConfig) -> tuple[ArraySet, list[str]]:
    """The test split (labels index the training split's classes) and the class names."""
    fmt, root = resolve_source(cfg)
    entry = cache.cached(cfg, fmt, "test", read_records(fmt, root, "test"))
    cache.check_bad_images(entry, cfg)
    return ArraySet(entry.images, entry.labels, entry.groups), list(entry.meta["class_names"])
