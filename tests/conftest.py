"""Shared test set-up: offline W&B and model hub, a private cache, and a tiny synthetic data set."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# No network here (and tests must not depend on one): W&B writes offline runs, the hub fails fast.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("WANDB_API_KEY", None)
os.environ.pop("RAY_ADDRESS", None)
# Ray workers started by tests must not open a usage-stats connection or wait on one.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

# A tiny synthetic set: 6 classes x 4 tracks x 6 frames, fast enough for a multi-trial search on 2 cores.
TINY_SYNTHETIC = {"num_classes": 6, "tracks_per_class": 4, "frames_per_track": 6, "test_per_class": 4,
                  "frame_size": 32, "seed": 0}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signsearch-cache")
    os.environ["SIGNSEARCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, cache_dir) -> dict:
    """DataConfig fields of a tiny synthetic set (generated once per session, cached)."""
    root = tmp_path_factory.mktemp("synthetic") / "signs"
    return {"format": "synthetic", "root": str(root), "image_size": 24, "val_fraction": 0.25,
            "cache_dir": str(cache_dir), "synthetic": dict(TINY_SYNTHETIC)}


@pytest.fixture
def isolated_hub(monkeypatch, tmp_path):
    """No weights from this machine's hub caches or environment can leak into a test."""
    import huggingface_hub.constants  # a submodule huggingface_hub does not load by itself

    from train.pretrained import ENV_WEIGHTS

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)


def free_port() -> int:
    """A port free now, from 20000-32767: above Ray's worker ports (10002-19999) and below the kernel's
    ephemeral range (32768+), where every Ray process's bind-to-0 servers land, so that none of them can
    take it before the test's Ray binds it (a port from bind-to-0 itself could be handed out again)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32767")
