"""Benchmark: Kornia batch augmentation vs per-sample torchvision workers, and augmentation's share of a step.

Two figures, both on CPU (the slow case; on a GPU batch augmentation is cheaper still):

* :func:`measure` -- throughput in images/s of :class:`train.data.augment.BatchAugment` on whole uint8 batches
  (converted to float in the timed loop) against an equal-strength ``torchvision.transforms.v2`` pipeline
  applied per sample in a ``DataLoader`` with ``os.cpu_count()`` worker processes over the same images.
  Both sides get every core: Kornia as intra-op threads, torchvision as one single-threaded process per core.
  Target: Kornia >= 3x.
* :func:`augment_fraction_of_step` -- the fraction of one training step (augment + forward + backward +
  AdamW step) spent augmenting. Target: <= 15 %.

Importing this module has no side effects; both functions restore torch's thread count and RNG state.
Run ``python bench/augment_speed.py`` for a table and one JSON line (about 30-45 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from typing import Iterator, Optional

import torch
import torchvision.transforms.v2 as v2
from torch.utils.data import DataLoader, Dataset

from train.config import AugmentConfig, ModelConfig
from train.data.augment import (
    MAX_BLUR_SIGMA,
    MAX_COLOR,
    MAX_HUE,
    MAX_NOISE_STD,
    MAX_PERSPECTIVE,
    MAX_ROTATION_DEG,
    MAX_SCALE,
    MAX_SHEAR_DEG,
    MAX_TRANSLATE,
    MIN_BLUR_SIGMA,
    build_augment,
)
from train.model import build_model

STRENGTH = 0.5  # every group, so both pipelines do the same amount of work
P = 0.8  # AugmentConfig's default per-op probability


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """torch intra-op threads set to ``count`` for the block, then restored; the RNG state likewise."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(before)


def _config(strength: float) -> AugmentConfig:
    return AugmentConfig(geometric=strength, photometric=strength, erasing=strength, p=P)


def torchvision_pipeline(strength: float = STRENGTH) -> v2.Compose:
    """Per-sample uint8 (3, H, W) -> float [0, 1] pipeline with the same ops and ranges as BatchAugment."""
    s = strength
    sigma_max = MAX_BLUR_SIGMA * s
    kernel = max(3, 2 * math.ceil(2 * sigma_max) + 1)
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomApply([v2.RandomAffine(degrees=MAX_ROTATION_DEG * s, translate=(MAX_TRANSLATE * s,) * 2,
                                        scale=(1 - MAX_SCALE * s, 1 + MAX_SCALE * s), shear=MAX_SHEAR_DEG * s)], p=P),
        v2.RandomPerspective(distortion_scale=MAX_PERSPECTIVE * s, p=P),
        v2.RandomApply([v2.ColorJitter(MAX_COLOR * s, MAX_COLOR * s, MAX_COLOR * s, MAX_HUE * s)], p=P),
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=(min(MIN_BLUR_SIGMA, sigma_max), sigma_max))], p=P),
        v2.RandomApply([v2.GaussianNoise(sigma=MAX_NOISE_STD * s, clip=True)], p=P),
        v2.RandomErasing(p=s, value=0.0),
    ])


class _AugmentedImages(Dataset):
    """In-memory uint8 images, each passed through a per-sample transform (what DataLoader workers run)."""

    def __init__(self, images: torch.Tensor, transform: v2.Compose):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.images[index])


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)  # one core per worker process: the DataLoader's parallelism is the processes


def _images(count: int, size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)


def _kornia_rate(images: torch.Tensor, batch: int, seconds: float, strength: float) -> float:
    """Images/s of BatchAugment over consecutive batches, uint8 -> float conversion included."""
    augment = build_augment(_config(strength))
    augment(images[:batch].float().div_(255))  # warm-up: first-call allocations and kernel selection
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        first = done % (len(images) - batch + 1)
        augment(images[first:first + batch].float().div_(255))
        done += batch
    return done / (time.perf_counter() - start)


def _torchvision_rate(images: torch.Tensor, batch: int, seconds: float, strength: float, workers: int) -> float:
    """Images/s a DataLoader with ``workers`` processes delivers, timed after its workers are started."""
    loader = DataLoader(_AugmentedImages(images, torchvision_pipeline(strength)), batch_size=batch,
                        num_workers=workers, persistent_workers=True, worker_init_fn=_one_thread)
    next(iter(loader))  # warm-up: fork the workers (excluded; a training run pays it once)
    # A new iterator on persistent workers first drains the warm-up's prefetched batches (untimed here),
    # then starts from an empty queue, so no batch computed before the timer is counted.
    epoch = iter(loader)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch_images in epoch:
            done += len(batch_images)
            if time.perf_counter() - start >= seconds:
                break
        epoch = iter(loader)
    elapsed = time.perf_counter() - start
    del loader
    return done / elapsed


def measure(image_size: int = 48, batch: int = 256, seconds: float = 5.0, strength: float = STRENGTH,
            threads: Optional[int] = None, workers: Optional[int] = None) -> dict:
    """Kornia batch vs torchvision per-sample augmentation throughput on CPU, in images/s.

    ``seconds`` is the timed budget of each side; ``threads`` (Kornia's torch threads) and ``workers``
    (DataLoader processes) default to ``os.cpu_count()``.
    """
    cores = os.cpu_count() or 1
    threads, workers = threads or cores, workers or cores
    images = _images(batch * 8, image_size)
    with _threads(threads):
        kornia = _kornia_rate(images, batch, seconds, strength)
    tv = _torchvision_rate(images, batch, seconds, strength, workers)
    return {"image_size": image_size, "batch": batch, "strength": strength, "p": P, "threads": threads,
            "workers": workers, "kornia_img_s": round(kornia, 1), "torchvision_img_s": round(tv, 1),
            "torchvision_img_s_per_process": round(tv / workers, 1), "speedup": round(kornia / tv, 2)}


def augment_fraction_of_step(model_name: str = "mobilenetv3_small_050", image_size: int = 32, batch: int = 64,
                             strength: float = STRENGTH, steps: int = 10, seconds: float = 5.0,
                             threads: Optional[int] = None) -> dict:
    """Share of a CPU training step spent in BatchAugment (augment / (augment + fwd + bwd + AdamW step)).

    Times up to ``steps`` steps after two warm-up steps, stopping early (after at least 3) once ``seconds``
    have passed, so a busy machine cannot stretch the benchmark.
    """
    with _threads(threads or os.cpu_count() or 1):
        torch.manual_seed(0)
        model = build_model(ModelConfig(name=model_name), num_classes=43).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        augment = build_augment(_config(strength))
        images, labels = torch.rand(batch, 3, image_size, image_size), torch.randint(0, 43, (batch,))
        augment_s = train_s = 0.0
        timed, start = 0, time.perf_counter()
        for step in range(steps + 2):  # the first two steps warm up allocators and AdamW state
            t0 = time.perf_counter()
            augmented = augment(images)
            t1 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(augmented), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            t2 = time.perf_counter()
            if step >= 2:
                augment_s, train_s, timed = augment_s + t1 - t0, train_s + t2 - t1, timed + 1
                if timed >= 3 and t2 - start >= seconds:
                    break
    return {"model": model_name, "image_size": image_size, "batch": batch, "steps": timed,
            "augment_ms": round(1000 * augment_s / timed, 2), "train_ms": round(1000 * train_s / timed, 2),
            "augment_fraction": round(augment_s / (augment_s + train_s), 4)}


def _load() -> float:
    """1-minute load average: above the core count, other processes share the cores and figures drop."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed budget per pipeline and setting (s)")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    load_before = _load()
    # All cores is the target setting; one core each isolates per-core efficiency from core sharing.
    speeds = [measure(args.image_size, args.batch, args.seconds),
              measure(args.image_size, args.batch, args.seconds, threads=1, workers=1)]
    shares = [augment_fraction_of_step(), augment_fraction_of_step(threads=1)]
    print(f"CPU augmentation, {args.image_size} px, batch {args.batch}, strength {STRENGTH} for every group, "
          f"p {P}; {cores} cores, load average {load_before} -> {_load()}")
    print(f"  {'setting':<26}{'Kornia img/s':>14}{'torchvision img/s':>19}{'per tv process':>16}{'speed-up':>10}")
    for speed in speeds:
        setting = f"{speed['threads']} threads / {speed['workers']} workers"
        print(f"  {setting:<26}{speed['kornia_img_s']:>14.0f}{speed['torchvision_img_s']:>19.0f}"
              f"{speed['torchvision_img_s_per_process']:>16.0f}{speed['speedup']:>9.2f}x")
    print(f"Training step of {shares[0]['model']} at {shares[0]['image_size']} px, batch {shares[0]['batch']} "
          f"(augment + forward + backward + AdamW):")
    for share, threads in zip(shares, (cores, 1)):
        print(f"  {threads} threads: augment {share['augment_ms']:.1f} ms + train {share['train_ms']:.1f} ms -> "
              f"augmentation {100 * share['augment_fraction']:.1f} % of the step")
    print("targets: speed-up >= 3x, augmentation <= 15 % of the step")
    print(json.dumps({"augment_speed": speeds[0], "augment_speed_one_core": speeds[1],
                      "augment_fraction_of_step": shares[0], "augment_fraction_of_step_one_thread": shares[1],
                      "load_average": [load_before, _load()], "cores": cores}))


if __name__ == "__main__":
    main()
