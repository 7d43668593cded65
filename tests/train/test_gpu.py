"""On a CUDA GPU: AMP with GPU-resident data, fractional GPUs shared by 4 trials, resume, Kornia's seeding.

Marked ``gpu`` and skipped where torch sees no CUDA device (``pytest -m gpu`` runs only these). They go
through the public entry points -- ``train.loop.run``/``run_local``, ``tune/run_search.py`` and
``train/train_model.py`` with ``--set`` overrides -- and ask Ray for GPUs explicitly
(``gpus_per_worker``), as a user on a GPU cluster would.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import REPO
from tests.helpers import dotted, kill_group, last_line_path, result_rows, start_in_session

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")]

EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)\s+train_loss (\S+)\s+val_loss (\S+)\s+val_acc (\S+)")


def _config(tiny_data: dict, **changes) -> dict:
    config = {"data": tiny_data, "model": {"name": "small_cnn", "cnn": {"blocks": 2, "width": 16}},
              "optim": {"lr": 1e-2, "batch_size": 32}, "epochs": 3, "seed": 3, "amp": True,
              "workers": {"threads_per_worker": 1}}
    config.update(changes)
    return config


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    return env


def _bf16_native() -> bool:
    """Ampere (compute capability 8.0) and newer compute bfloat16 natively; T4/V100 only emulate it."""
    return torch.cuda.get_device_capability() >= (8, 0)


def _epochs(log: Path) -> list[tuple[int, float, float, float]]:
    """(epoch, train_loss, val_loss, val_acc) per epoch line of rank 0 (Ray may forward a line twice)."""
    rows = {}
    for match in EPOCH_LINE.finditer(log.read_text()):
        rows.setdefault(int(match[1]), (int(match[1]), float(match[3]), float(match[4]), float(match[5])))
    return [rows[epoch] for epoch in sorted(rows)]


def test_one_worker_with_amp_trains_on_gpu_resident_data(tiny_data, tmp_path):
    """The loop on the GPU: it learns, the uint8 images sit in GPU memory for the whole trial, and AMP
    picks bfloat16 only where the GPU has it natively (no loss scaling), float16 with a scaler elsewhere."""
    from train.config import parse
    from train.loop import run
    from train.session import LocalSession

    data = {**tiny_data, "image_size": 64}  # 144 images x 64 x 64 x 3 = 1.8 MB of uint8, far above the model
    synthetic = tiny_data["synthetic"]
    images = synthetic["num_classes"] * synthetic["tracks_per_class"] * synthetic["frames_per_track"]
    images_bytes = images * 64 * 64 * 3
    cfg = parse(_config(data, epochs=4, model={"name": "small_cnn", "cnn": {"blocks": 2, "width": 8}}))
    held = []  # GPU memory in use at each epoch's report: data + weights + optimizer, no activations

    def on_report(metrics: dict) -> None:
        torch.cuda.synchronize()
        held.append(torch.cuda.memory_allocated())

    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    history = run(cfg, LocalSession(on_report=on_report, checkpoint_root=tmp_path))
    assert [e.epoch for e in history] == [0, 1, 2, 3]
    assert all(torch.isfinite(torch.tensor([e.train_loss, e.val_loss])).all() for e in history)
    chance = 1 / synthetic["num_classes"]
    assert history[-1].val_acc > 2 * chance, [e.val_acc for e in history]
    # Weights of this small_cnn + AdamW state are ~20 KB: only resident images explain half the set.
    assert min(held) - before >= images_bytes / 2, (held, before, images_bytes)

    state = torch.load(tmp_path / "checkpoint_0004" / "state.pt", map_location="cpu", weights_only=False)
    assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())
    if _bf16_native():
        assert state["scaler"] == {}  # bfloat16 has float32's range: GradScaler disabled
    else:
        assert state["scaler"]["scale"] > 0  # float16 with loss scaling, never emulated bfloat16


def test_same_seed_same_kornia_batch_on_cuda():
    from train.config import AugmentConfig
    from train.data.augment import build_augment

    augment = build_augment(AugmentConfig(geometric=0.6, photometric=0.6, erasing=0.5, p=0.8, hflip=True)).cuda()
    images = torch.rand(64, 3, 48, 48, generator=torch.Generator().manual_seed(0)).cuda()

    def batch(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)  # seeds the CPU and every CUDA generator: all that kornia draws from
        return augment(images)

    first, again, other = batch(11), batch(11), batch(12)
    assert first.device.type == "cuda" and first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert 0.0 <= first.min().item() and first.max().item() <= 1.0
    assert not torch.equal(first, images)


@pytest.mark.timeout(600)
def test_four_trials_share_one_gpu(tiny_data, tmp_path):
    """gpus_per_worker 0.25: "auto" runs 4 trials at once on the one GPU, and all of them finish."""
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    args = [sys.executable, str(REPO / "tune" / "run_search.py"),
            "--config", str(REPO / "search_spaces" / "smoke.yaml"),
            "--storage", str(tmp_path / "runs"), "--address", "local", "--num-cpus", "4", "--set", *data,
            "trial.workers.gpus_per_worker=0.25", "trial.workers.cpus_per_worker=1", "max_concurrent_trials=auto",
            "budget.num_samples=4", "trial.epochs=3", "budget.grace_period=3", "wandb.enabled=false",
            "trial.amp=true"]
    log = tmp_path / "search.log"
    proc = start_in_session(args, log, _env())
    try:
        assert proc.wait(timeout=560) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    text = log.read_text()
    assert "max concurrent trials: 4 (auto;" in text, text[-3000:]
    summary = json.loads(last_line_path(log).read_text())
    assert summary["num_trials"] == 4 and summary["num_errors"] == 0, summary
    assert [trial["epochs"] for trial in summary["trials"]] == [3, 3, 3, 3]
    experiment = Path(summary["experiment_dir"])
    pids = set()
    for trial in summary["trials"]:
        trial_dir = Path(trial["path"]) if Path(trial["path"]).is_absolute() else experiment / trial["path"]
        rows = result_rows(trial_dir)
        assert [row["epoch"] for row in rows][-1] == 3
        pids |= {row["pid"] for row in rows}
    # Trial processes are reused (reuse_actors) once a trial ends: four processes means all four ran at once.
    assert len(pids) == 4, pids


@pytest.mark.timeout(600)
def test_training_resumes_on_the_gpu_from_its_checkpoint(tiny_data, tmp_path):
    """A run of the same name continues from its last checkpoint: weights, AdamW state and loss scaler are
    loaded onto the GPU and training goes on at the next epoch, not from scratch."""
    config_file = tmp_path / "trial.yaml"
    config_file.write_text(yaml.safe_dump(_config(tiny_data, epochs=2)))
    base = [sys.executable, str(REPO / "train" / "train_model.py"), "--config", str(config_file),
            "--storage", str(tmp_path / "runs"), "--name", "resumable", "--address", "local", "--num-cpus", "2",
            "--set", "workers.gpus_per_worker=1", "workers.cpus_per_worker=1"]

    def train(log: Path, *overrides: str) -> list[tuple[int, float, float, float]]:
        proc = start_in_session([*base, *overrides], log, _env())
        try:
            assert proc.wait(timeout=280) == 0, log.read_text()[-4000:]
        finally:
            kill_group(proc)
        return _epochs(log)

    first = train(tmp_path / "first.log")
    assert [row[0] for row in first] == [1, 2], first
    resumed = train(tmp_path / "resumed.log", "epochs=4")
    assert [row[0] for row in resumed] == [3, 4], resumed  # started at epoch 3: the checkpoint was loaded
    assert resumed[0][1] < first[0][1], (first, resumed)  # train loss goes on from where epoch 2 left it
    state = torch.load(last_line_path(tmp_path / "resumed.log") / "state.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 3
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
