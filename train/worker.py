"""What Ray Train ships to its workers, in a module that imports nothing heavy.

A multi-worker trial's driver only builds the TorchTrainer: importing the loop (torch, timm,
torchvision, kornia: ~2-4 s on a small node) there would add that to every trial's start. The
functions below import what they need on the worker, where it is needed anyway.
"""

from __future__ import annotations

from typing import Any


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Entry point for ``TorchTrainer`` workers (Ray Train V2): ``loop_config`` is {"trial": the trial
    config dict, "data_key": the cache entry the driver prepared, or None, "tags": values added to every report,
    "resume_from": the checkpoint to start from when the run has none of its own, or None}."""
    from train.config import parse
    from train.loop import run
    from train.session import ray_train_session

    session = ray_train_session(loop_config.get("tags"), loop_config.get("resume_from"))
    run(parse(loop_config["trial"]), session, data_key=loop_config.get("data_key"))
