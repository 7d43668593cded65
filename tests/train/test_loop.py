"""The training loop: reproducible, data-parallel under TorchTrainer, and resumable after a kill."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from infra import hold
from tests.conftest import REPO
from tests.helpers import kill_group, last_line_path, start_in_session, stop_when_held, wait_held
from train.checkpoint import CHECKPOINT_FILE
from train.config import parse
from train.data.prepared import prepare
from train.loop import _epoch_order, run_local

TRAIN = REPO / "train" / "train_model.py"
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)\s+train_loss (\S+)\s+val_loss (\S+)\s+val_acc (\S+)")


def _config(tiny_data: dict, **changes) -> dict:
    config = {"data": tiny_data, "model": {"name": "small_cnn", "cnn": {"blocks": 2, "width": 16}},
              "optim": {"lr": 1e-2, "batch_size": 32}, "epochs": 3, "seed": 3,
              "workers": {"threads_per_worker": 1}}
    config.update(changes)
    return config


def test_epoch_shards_are_disjoint_equal_and_leave_out_only_the_remainder():
    n, world = 103, 4
    shards = [_epoch_order(n, seed=1, epoch=2, rank=r, world_size=world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # DDP needs equal step counts on every rank
    union = np.concatenate(shards)
    assert len(set(union.tolist())) == len(union) == n - n % world  # none twice, only the remainder left out
    skipped = [set(range(n)) - set(np.concatenate([_epoch_order(n, 1, epoch, r, world) for r in range(world)]))
               for epoch in range(4)]
    assert all(len(s) == n % world for s in skipped) and len(set().union(*skipped)) > n % world  # not always the same
    assert sorted(_epoch_order(n, 1, 2, rank=0, world_size=1).tolist()) == list(range(n))  # one worker: every image
    assert not np.array_equal(shards[0], _epoch_order(n, seed=1, epoch=3, rank=0, world_size=world))


def test_same_seed_and_config_give_the_same_metrics(tiny_data):
    cfg = parse(_config(tiny_data, epochs=2))
    first = [(e.train_loss, e.val_loss, e.val_acc) for e in run_local(cfg)]
    second = [(e.train_loss, e.val_loss, e.val_acc) for e in run_local(cfg)]
    assert first == second


def test_frozen_backbone_then_unfrozen(tiny_data, tmp_path):
    """Epoch 1 trains only the head (backbone weights and BN statistics untouched); epoch 2 unfreezes."""
    from train.model import build_model

    cfg = parse(_config(tiny_data, epochs=2, model={"name": "small_cnn", "freeze_backbone": True,
                                                      "unfreeze_epoch": 1, "cnn": {"blocks": 2, "width": 8}}))
    history = run_local(cfg, checkpoint_root=tmp_path)
    first, second = (torch.load(tmp_path / f"checkpoint_{e:04d}" / CHECKPOINT_FILE, weights_only=False)["model"]
                     for e in (1, 2))
    torch.manual_seed(cfg.seed)  # the loop seeds the same way before building: same initial weights
    start = build_model(cfg.model, num_classes=len(prepare(cfg.data).class_names)).state_dict()
    backbone = [k for k in start if k.startswith("features.")]
    head = [k for k in start if k.startswith("classifier.")]
    assert backbone and head and len(history) == 2
    for key in backbone:
        assert torch.equal(first[key], start[key]), key
    assert any(not torch.equal(first[key], start[key]) for key in head)
    assert any(not torch.equal(second[key], first[key]) for key in backbone)


def _train_cli(args: list[str], log: Path) -> subprocess.Popen:
    return start_in_session([sys.executable, str(TRAIN), *args], log, dict(os.environ))


def _epochs(log: Path) -> list[tuple[int, float, float]]:
    """(epoch, val_loss, val_acc) per epoch line of rank 0 (Ray may forward a line twice)."""
    rows = {}
    for match in EPOCH_LINE.finditer(log.read_text()):
        rows.setdefault(int(match[1]), (int(match[1]), float(match[4]), float(match[5])))
    return [rows[epoch] for epoch in sorted(rows)]


VAL_ACC_TOLERANCE = 0.15
"""Largest |val_acc(2 workers) - val_acc(1 worker)| allowed (about 5 of the tiny set's 36 validation images):
the two runs draw different augmentations and batch-norm statistics per rank, so they are not bitwise equal."""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_workers_match_one_worker_with_the_same_global_batch(tiny_data, tmp_path):
    """2 DDP workers (gloo) with 16 images per worker against 1 worker with 32: the same global batch, so the
    same optimizer steps per epoch (the LR schedule's position), and validation accuracy within tolerance."""
    import yaml

    epochs = 5
    base = _config(tiny_data, epochs=epochs)
    one = run_local(parse({**base, "optim": {**base["optim"], "batch_size": 32}}), checkpoint_root=tmp_path / "one")
    config = {**base, "optim": {**base["optim"], "batch_size": 16},
              "workers": {"num_workers": 2, "cpus_per_worker": 1, "threads_per_worker": 1}}
    config_file = tmp_path / "trial.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = tmp_path / "train.log"
    proc = _train_cli(["--config", str(config_file), "--storage", str(tmp_path / "runs"),
                       "--address", "local", "--num-cpus", "2"], log)
    try:
        assert proc.wait(timeout=280) == 0, log.read_text()[-4000:]
    finally:
        kill_group(proc)
    two = _epochs(log)
    assert [e for e, _, _ in two] == list(range(1, epochs + 1)), log.read_text()[-3000:]
    two_state = torch.load(last_line_path(log) / CHECKPOINT_FILE, weights_only=False)
    one_state = torch.load(tmp_path / "one" / f"checkpoint_{epochs:04d}" / CHECKPOINT_FILE, weights_only=False)
    train_images = len(prepare(parse(base).data).train.labels)
    steps = epochs * math.ceil(train_images / 32)
    assert two_state["scheduler"]["last_epoch"] == one_state["scheduler"]["last_epoch"] == steps
    chance = 1 / tiny_data["synthetic"]["num_classes"]
    assert two[-1][2] > 2 * chance and one[-1].val_acc > 2 * chance, (two, one)
    assert abs(two[-1][2] - one[-1].val_acc) <= VAL_ACC_TOLERANCE, (two[-1][2], one[-1].val_acc)
    print(f"val_acc 2 workers {two[-1][2]:.4f}, 1 worker {one[-1].val_acc:.4f}")


def test_a_run_restored_from_its_final_checkpoint_reports_that_epoch_again(tiny_data, tmp_path):
    """A search killed after a trial's final checkpoint was committed, before the trial was recorded as finished:
    the restored run has nothing to train and reports the final epoch's numbers again (the same row, the same
    trained_at, marked), instead of ending without the metric. (Restored from an earlier epoch, the repeat comes
    first and training goes on: tests/tune/test_resume.py.)"""
    from ray.train import Checkpoint

    from train.loop import Trainer
    from train.metrics import REPORTED_AGAIN
    from train.session import LocalSession

    cfg = parse(_config(tiny_data, epochs=2))
    first: list[dict] = []
    run_local(cfg, checkpoint_root=tmp_path)  # checkpoint_0002: the final epoch
    saved = json.loads((tmp_path / "checkpoint_0002" / "metrics.json").read_text())

    class Restoring(LocalSession):
        def restored_checkpoint(self):
            return Checkpoint.from_directory(tmp_path / "checkpoint_0002")

    trainer = Trainer(cfg, Restoring(on_report=first.append))
    assert trainer.start_epoch == 2 and trainer.fit() == []
    assert first == [{**saved, REPORTED_AGAIN: True}] and saved["epoch"] == 2 and "trained_at" in saved


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_training_resumes_at_the_right_epoch_with_the_same_state(tiny_data, tmp_path):
    """SIGKILL the whole run while it is held right after epoch 2's checkpoint is committed; the same
    run name resumes at epoch 3 exactly and ends where an uninterrupted run ends (weights, optimizer
    and schedule restored)."""
    import yaml

    config = _config(tiny_data, epochs=4)
    config_file = tmp_path / "trial.yaml"
    config_file.write_text(yaml.safe_dump(config))
    reference = run_local(parse(config), checkpoint_root=tmp_path / "reference")

    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    args = ["--config", str(config_file), "--storage", str(storage), "--name", "resumable",
            "--address", "local", "--num-cpus", "2"]
    proc = start_in_session([sys.executable, str(TRAIN), *args], log,
                            {**os.environ, hold.ENV: f"checkpoint:2:{holds}"})
    try:
        held = wait_held(proc, holds, log)
    finally:
        kill_group(proc)  # the driver, its Ray and the held worker die at once
    assert held["epoch"] == 2 and held["run"] == "resumable", held

    resumed_log = tmp_path / "resumed.log"
    proc = _train_cli(args, resumed_log)
    try:
        assert proc.wait(timeout=240) == 0, resumed_log.read_text()[-4000:]
    finally:
        kill_group(proc)
    resumed = _epochs(resumed_log)
    assert [epoch for epoch, _, _ in resumed] == [3, 4], resumed_log.read_text()[-3000:]
    final = torch.load(last_line_path(resumed_log) / CHECKPOINT_FILE, weights_only=False)
    expected = torch.load(tmp_path / "reference" / "checkpoint_0004" / CHECKPOINT_FILE, weights_only=False)
    assert final["epoch"] == expected["epoch"] == 3
    for key in expected["model"]:
        assert torch.allclose(final["model"][key].float(), expected["model"][key].float(), atol=1e-5), key
    assert final["scheduler"]["last_epoch"] == expected["scheduler"]["last_epoch"]
    assert resumed[-1][2] == pytest.approx(reference[-1].val_acc, abs=1e-4)  # printed to 4 decimals


@pytest.mark.slow
def test_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: -1}\n")
    result = subprocess.run([sys.executable, str(TRAIN), "--config", str(bad)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: optim.lr: got -1.0, allowed: > 0"
    result = subprocess.run([sys.executable, str(TRAIN), "--config", str(bad), "--set", "optim.lrr=1"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown key 'optim.lrr'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigterm_stops_training_and_prints_the_command_that_resumes_it(tiny_data, tmp_path):
    """SIGTERM to train_model.py while rank 0 is held after epoch 1's committed checkpoint: no Ray crash dump
    (exit 134) but exit 143 and, last, the command that continues the run: the same config, storage and run name
    (what resuming a run by its name does is the killed-training test's)."""
    import yaml

    config_file = tmp_path / "trial.yaml"
    config_file.write_text(yaml.safe_dump(_config(tiny_data, epochs=2)))
    storage, log, holds = tmp_path / "runs", tmp_path / "first.log", tmp_path / "hold"
    args = ["--config", str(config_file), "--storage", str(storage), "--address", "local", "--num-cpus", "2"]
    proc = start_in_session([sys.executable, str(TRAIN), *args], log, {**os.environ, hold.ENV: f"checkpoint:1:{holds}"})
    held = stop_when_held(proc, holds, log, lambda pid: os.kill(pid, signal.SIGTERM), 143, timeout=120)
    assert held["epoch"] == 1
    command = log.read_text().strip().splitlines()[-1].split()
    assert command[:2] == ["python", "train/train_model.py"] and command[command.index("--name") + 1] == held["run"]
    assert command[command.index("--config") + 1] == str(config_file)
    assert command[command.index("--storage") + 1] == str(storage)

