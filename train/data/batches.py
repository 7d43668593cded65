"""Where the loop's batches come from: the memory-mapped cache, a GPU-resident copy of it, or a pinned prefetch.

For a small model at GTSRB's 48 px the GPU computes a batch in well under a millisecond, so the input
pipeline, not the GPU, sets the speed. Three sources, picked once per trial by :func:`batch_source`:

* CPU training: rows gathered from the memory map (sorted, so reads follow the file), as uint8.
* GPU, split fits ``data.gpu_cache_fraction`` of the free GPU memory (GTSRB at 48 px is 0.27 GB of uint8,
  ASL at 64 px 1.07 GB): the uint8 array is copied to the GPU once per trial and batches are gathered there
  with an index tensor that is moved once per epoch. No host work and no host synchronisation per step.
* GPU, split too large: the next batch is gathered into pinned host memory by a background thread while the
  current one trains, and copied with ``non_blocking=True`` (which only overlaps from pinned memory).

Every source yields ``(images, labels)``: uint8 NHWC images and int64 labels on the training device.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import torch

from train.data.prepared import ArraySet

Bounds = Sequence[tuple[int, int]]
"""(start, stop) slices of an epoch's index order, one per batch."""


def batch_bounds(count: int, num_batches: int) -> list[tuple[int, int]]:
    """Slices that cut ``count`` indices into ``num_batches`` near-equal batches (as ``np.array_split``)."""
    size, extra = divmod(count, num_batches)
    bounds, start = [], 0
    for i in range(num_batches):
        stop = start + size + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def fixed_bounds(count: int, batch: int) -> list[tuple[int, int]]:
    """Slices of at most ``batch`` indices (evaluation)."""
    return [(start, min(start + batch, count)) for start in range(0, count, batch)]


class HostBatches:
    """Rows gathered from the (memory-mapped) host arrays; on CUDA, through pinned memory, one batch ahead."""

    def __init__(self, split: ArraySet, device: torch.device):
        self.split = split
        self.device = device
        self.prefetch = device.type == "cuda"

    def __len__(self) -> int:
        return len(self.split)

    def _gather(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        indices = np.sort(indices)  # the memory map is read in file order; a batch's order does not matter
        images = torch.from_numpy(np.ascontiguousarray(self.split.images[indices]))
        labels = torch.from_numpy(np.ascontiguousarray(self.split.labels[indices]))
        if self.prefetch:
            images, labels = images.pin_memory(), labels.pin_memory()
        return images, labels

    def __call__(self, order: np.ndarray, bounds: Bounds) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.prefetch:
            for start, stop in bounds:
                yield self._gather(order[start:stop])
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
            pending = pool.submit(self._gather, order[bounds[0][0]:bounds[0][1]]) if bounds else None
            for i in range(len(bounds)):
                images, labels = pending.result()
                if i + 1 < len(bounds):
                    pending = pool.submit(self._gather, order[bounds[i + 1][0]:bounds[i + 1][1]])
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


class DeviceBatches:
    """The whole split on the GPU as uint8; batches are gathered there by index."""

    def __init__(self, split: ArraySet, device: torch.device):
        self.device = device
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).to(device)
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels)).to(device)

    def __len__(self) -> int:
        return len(self.labels)

    def __call__(self, order: np.ndarray, bounds: Bounds) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order_on_device = torch.from_numpy(np.ascontiguousarray(order)).to(self.device)  # once per epoch
        for start, stop in bounds:
            index = order_on_device[start:stop]
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def device_budget(free: int, total: int, cached: int, share: float, fraction: float) -> float:
    """Bytes of GPU memory a trial may fill with its data arrays.

    ``free``: what the driver reports free on the whole GPU now; ``cached``: what this process's caching
    allocator holds but no tensor uses (a reused trial process keeps the last trial's blocks; they are this
    trial's to use, though the driver counts them as used); ``share``: the trial's fraction of the GPU
    (``workers.gpus_per_worker``), so two 0.5-GPU trials starting together cannot each claim the whole free
    memory; ``fraction``: ``data.gpu_cache_fraction``, the part of that a trial's arrays may take.
    """
    mine = min(free + cached, share * total)
    return fraction * max(mine, 0)


def fits_on_device(splits: Sequence[ArraySet], device: torch.device, fraction: float, share: float = 1.0) -> bool:
    """Whether the splits' arrays fit :func:`device_budget` on ``device`` now."""
    if device.type != "cuda" or fraction <= 0:
        return False
    free, total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    needed = sum(split.images.nbytes + split.labels.nbytes for split in splits)
    return needed <= device_budget(free, total, cached, min(share, 1.0) or 1.0, fraction)


def batch_sources(train: ArraySet, val: ArraySet, device: torch.device, gpu_fraction: float, gpu_share: float = 1.0):
    """(train source, val source) for this device: GPU-resident when both fit, else from the host."""
    kind = DeviceBatches if fits_on_device((train, val), device, gpu_fraction, gpu_share) else HostBatches
    return kind(train, device), kind(val, device)
