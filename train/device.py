"""Which device a rank trains on, and in which precision: what Ray assigned to it, checked against what torch sees.

Ray Train makes every GPU of a node visible to each of its workers there, so a rank must train on the one
Ray assigned to it (``ray.train.torch.get_device()``), never on ``cuda:0``. A 1-worker Tune trial runs the
loop in the trial's own process, outside Ray Train; Ray sets its ``CUDA_VISIBLE_DEVICES`` and the device is
the position of its GPU id in that list, the rule Ray documents for ``get_device``. Fractional GPUs make
several trials share one device.

A worker that Ray gave GPUs but whose torch sees no CUDA (a host driver too old for the locked CUDA
wheels, a CPU-only wheel) stops with one line rather than training on the CPU while holding the GPUs.
The fake multi-node cluster's GPUs are labels only; ``workers.fake_gpus`` says so explicitly.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import torch

from train.config import ConfigError, WorkersConfig


class GpuUnavailable(ConfigError):
    """Ray assigned GPUs to this worker but torch cannot use any; the message says what to check."""


def ray_gpu_ids() -> list[str]:
    """GPU ids Ray assigned to this process (empty outside Ray, or for a CPU worker)."""
    import ray

    return [str(gpu) for gpu in ray.get_gpu_ids()] if ray.is_initialized() else []


def visible_index(gpu_id: str, visible: Optional[str]) -> int:
    """Index of Ray's ``gpu_id`` among ``CUDA_VISIBLE_DEVICES`` (Ray sets it to a superset of the process's ids).

    Unset (``RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES=1``: every GPU of the node is visible), the id is the
    device index itself. An id the list does not hold is one line, never a silent fallback to GPU 0 (which
    would put every trial of the node on one GPU).
    """
    if visible is None or visible.strip() == "":
        if not gpu_id.isdigit():
            raise GpuUnavailable(f"Ray assigned GPU {gpu_id!r} but CUDA_VISIBLE_DEVICES is not set, so its device "
                                 "index is unknown; let Ray set CUDA_VISIBLE_DEVICES")
        return int(gpu_id)
    listed = [item.strip() for item in visible.split(",")] if visible != "NoDevFiles" else []
    if gpu_id not in listed:
        raise GpuUnavailable(f"Ray assigned GPU {gpu_id!r} but CUDA_VISIBLE_DEVICES={visible!r} does not list it; "
                             "something changed CUDA_VISIBLE_DEVICES after Ray set it")
    return listed.index(gpu_id)


def tune_trial_device() -> torch.device:
    """The GPU of a Tune trial process that Ray gave one (Ray's documented get_device rule)."""
    return torch.device("cuda", visible_index(ray_gpu_ids()[0], os.environ.get("CUDA_VISIBLE_DEVICES")))


def train_worker_device() -> torch.device:
    """The GPU Ray Train assigned to this rank."""
    import ray.train.torch

    return ray.train.torch.get_device()


def pick_device(workers: WorkersConfig, gpu_ids: Sequence[str], assigned: Callable[[], torch.device],
                cuda_available: Callable[[], bool] = torch.cuda.is_available) -> torch.device:
    """The device this rank trains on.

    ``gpu_ids``: what Ray assigned (empty: a CPU worker); ``assigned``: how this kind of process finds its GPU
    among the visible ones.
    """
    if workers.fake_gpus or not gpu_ids:
        return torch.device("cpu")
    if not cuda_available():
        raise GpuUnavailable(
            f"Ray assigned GPU(s) {', '.join(gpu_ids) or '(none listed)'} to this worker, but torch "
            f"{torch.__version__} (CUDA {torch.version.cuda or 'none: a CPU-only build'}) sees no CUDA device: "
            "the node's NVIDIA driver is too old for this CUDA build, or the wheel is CPU-only (see the cluster "
            "files' driver check); on Ray's fake cluster set trial.workers.fake_gpus=true")
    device = assigned()
    torch.cuda.set_device(device)  # kernels, NCCL and the caching allocator then all use this GPU
    return device


def bare_process_device() -> torch.device:
    """Outside Ray (benchmarks, debugging): the first GPU when torch sees one, else the CPU."""
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


def amp_dtype(device: torch.device, enabled: bool) -> Optional[torch.dtype]:
    """Autocast dtype: bfloat16 where the GPU computes it natively (Ampere and newer), float16 (with loss
    scaling) where it would only be emulated (T4, V100), None on the CPU or when AMP is off."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
