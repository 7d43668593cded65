"""Checkpoints, experiments and exported models shared by the deploy tests (export, predict, serve).

Each is built once per test session, on disk under pytest's session temp folder, by the real training
loop and the real export CLI; later calls (from any test module) find it there.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXPORT = REPO / "results" / "export.py"
PREDICT = REPO / "results" / "predict.py"
SERVE = REPO / "results" / "serve.py"

# small_cnn trained until it gets every test sign of `sign_data` right (measured: test accuracy 1.0, smallest
# top-1 margin 0.17 in probability, the same with 1 or 2 torch threads). The session's tiny set (4 tracks per
# class) is too small for that: ~0.88 on its test signs whatever the settings; 8 tracks and 3 blocks reach 1.0.
SMALL_CNN = {"model": {"name": "small_cnn", "cnn": {"blocks": 3, "width": 16}}, "epochs": 10,
             "optim": {"lr": 1e-2, "batch_size": 16}, "augment": {"geometric": 0.3, "photometric": 0.3}}
# A timm MobileNetV3 (HardSwish, HardSigmoid, squeeze-excite): one epoch is enough for the parity check.
MOBILENET = {"model": {"name": "mobilenetv3_small_050"}, "epochs": 1, "optim": {"lr": 1e-3, "batch_size": 32}}


def _session_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp() / "deploy"
    root.mkdir(exist_ok=True)
    return root


def sign_data(tmp_path_factory, tiny_data: dict) -> dict:
    """The tiny set's settings with 8 tracks per class instead of 4 (its own root; the same cache folder)."""
    root = _session_root(tmp_path_factory) / "signs"
    return {**tiny_data, "root": str(root), "synthetic": {**tiny_data["synthetic"], "tracks_per_class": 8}}


def experiment(tmp_path_factory, data: dict, settings: dict, name: str) -> Path:
    """An experiment folder as a search leaves it: one trial trained by the real loop, its result.json rows,
    search.yaml, and a summary.json whose paths are relative to the folder (contract A)."""
    from train.config import parse
    from train.loop import run_local

    folder = _session_root(tmp_path_factory) / f"experiment-{name}"
    if (folder / "summary.json").is_file():
        return folder
    trial = folder / "trial_0001"
    cfg = parse({"data": data, **settings})
    with contextlib.redirect_stdout(io.StringIO()):  # the loop prints a line per epoch
        epochs = run_local(cfg, checkpoint_root=trial)
    rows = [epoch.as_metrics() for epoch in epochs]
    (trial / "result.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    # Written through the experiment contract, as a search writes them.
    from tune.experiment.layout import SEARCH_FILE
    from tune.experiment.records import Summary, TrialRecord
    from tune.experiment.storage import Experiment
    from tune.space import SearchFile

    experiment_dir = Experiment.at(str(folder))
    search = SearchFile(experiment=name, trial=cfg, budget={"num_samples": 1},
                        space={"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}})
    experiment_dir.write_text(SEARCH_FILE, search.dump())
    checkpoint = f"trial_0001/checkpoint_{cfg.epochs:04d}"
    best = TrialRecord(trial_id="0001", status="TERMINATED", params={"optim.lr": cfg.optim.lr}, config=cfg,
                       epochs=cfg.epochs, metrics=rows[-1], path="trial_0001", checkpoint=checkpoint)
    Summary(experiment=name, experiment_dir=str(folder), metric="val_acc", mode="max", best=best, trials=[best],
            num_trials=1, num_errors=0, total_epochs=cfg.epochs, epochs=cfg.epochs, wall_s=1.0, interrupted=False,
            data_fingerprint="unknown", versions={}).write(experiment_dir)
    return folder


def run_export(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPORT), str(source), "--out", str(out), *extra], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def exported_model(tmp_path_factory, tiny_data: dict) -> Path:
    """MODEL_DIR of the small_cnn experiment's best trial (on `sign_data`), written by the export CLI."""
    out = _session_root(tmp_path_factory) / "model-small_cnn"
    if not (out / "model.json").is_file():
        data = sign_data(tmp_path_factory, tiny_data)
        result = run_export(experiment(tmp_path_factory, data, SMALL_CNN, "small_cnn"), out)
        assert result.returncode == 0, result.stderr
    return out


def sign_files(data: dict, folder: Path) -> list[tuple[Path, int]]:
    """The data set's test signs, cropped to their boxes (as a caller does) and written as PNG, JPEG and PPM
    files: [(path, known class index)]. GTSRB's test CSV names each image's box and ClassId."""
    from PIL import Image

    from train.data import read_records

    folder.mkdir(parents=True, exist_ok=True)
    records = read_records("synthetic", Path(data["root"]), "test")
    signs = []
    for i, (path, label, roi) in enumerate(zip(records.paths, records.labels.tolist(), records.rois.tolist())):
        with Image.open(path) as image:
            crop = image.convert("RGB").crop((roi[0], roi[1], roi[2] + 1, roi[3] + 1))
        target = folder / f"sign{i:03d}.{('png', 'jpg', 'ppm')[i % 3]}"
        crop.save(target, quality=95) if target.suffix == ".jpg" else crop.save(target)
        signs.append((target, label))
    return signs
