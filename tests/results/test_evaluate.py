"""results/evaluate.py on the best checkpoint of a real tiny search (tests/results/searched.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from results import evaluate
from tests.conftest import REPO
from tests.helpers.searched import tiny_search
from train.config import parse
from train.data import load_image, read_records
from train.model import IMAGENET_MEAN, IMAGENET_STD, build_model

EVALUATE = REPO / "results" / "evaluate.py"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_data) -> Path:
    return tiny_search(tmp_path_factory, tiny_data)


def _best_checkpoint(experiment: Path) -> str:
    """The best checkpoint relative to the experiment (summary.json records it so, or absolute in older ones)."""
    recorded = Path(json.loads((experiment / "summary.json").read_text())["best"]["checkpoint"])
    return str(recorded.relative_to(experiment) if recorded.is_absolute() else recorded)


def _accuracy_from_scratch(checkpoint: Path) -> float:
    """Test accuracy computed without evaluate.py or the data cache: the checkpoint's weights, the test
    images decoded from their files, ImageNet normalisation (what small_cnn trains with)."""
    cfg = parse(json.loads((checkpoint / "trial_config.json").read_text()))
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
    model = build_model(cfg.model, num_classes=len(state["class_names"]))  # small_cnn, not pretrained
    model.load_state_dict(state["model"])
    model.eval()
    records = read_records("synthetic", Path(cfg.data.root), "test")
    images = np.stack([load_image(path, None if records.rois is None else records.rois[i], cfg.data.image_size,
                                  cfg.data.roi_crop) for i, path in enumerate(records.paths)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy()
    return float((predicted == records.labels).mean())


@pytest.mark.slow
def test_best_checkpoint_on_test_then_val_split_each_its_own_files(experiment, tmp_path, tiny_data):
    result = subprocess.run([sys.executable, str(EVALUATE), str(experiment)], cwd=REPO, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    checkpoint = experiment / _best_checkpoint(experiment)
    out = checkpoint / "evaluation-test.json"
    lines = result.stdout.strip().splitlines()
    assert lines[-2:] == [str(checkpoint / "confusion-test.png"), str(out)]
    evaluation = json.loads(out.read_text())
    classes = tiny_data["synthetic"]["num_classes"]
    assert evaluation["split"] == "test" and len(evaluation["class_names"]) == classes
    assert evaluation["images"] == classes * tiny_data["synthetic"]["test_per_class"]
    matrix = evaluation["confusion_matrix"]
    assert sum(map(sum, matrix)) == evaluation["images"]
    assert evaluation["accuracy"] == pytest.approx(_accuracy_from_scratch(checkpoint), abs=1e-9)
    # Per-class accuracy, worst first, in the JSON and printed in that order.
    per_class = evaluation["per_class_accuracy"]
    assert [row["accuracy"] for row in per_class] == sorted(row["accuracy"] for row in per_class)
    assert {row["class"] for row in per_class} == set(evaluation["class_names"])
    for row in per_class:
        assert row["accuracy"] == matrix[row["index"]][row["index"]] / sum(matrix[row["index"]])
    printed = [line for line in lines if line.endswith(tuple(f" {r['index']:3d} {r['class']}" for r in per_class))]
    assert printed == [next(line for line in lines if line.endswith(f" {r['index']:3d} {r['class']}"))
                       for r in per_class]
    assert (checkpoint / "confusion-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The val split goes to its own files, into a --out folder that does not exist yet.
    before = out.read_text()
    folder = tmp_path / "not" / "yet"
    assert evaluate.main([str(experiment), "--split", "val", "--out", str(folder)]) == 0
    val = json.loads((folder / "evaluation-val.json").read_text())
    assert val["split"] == "val" and (folder / "confusion-val.png").is_file()
    assert out.read_text() == before


@pytest.mark.slow
def test_a_moved_experiment_evaluates_its_own_checkpoint(experiment, tmp_path, capsys):
    moved = tmp_path / "elsewhere" / experiment.name
    shutil.copytree(experiment, moved, ignore=shutil.ignore_patterns("wandb", "evaluation-*", "confusion-*"))
    assert evaluate.main([str(moved)]) == 0
    checkpoint = moved / _best_checkpoint(experiment)
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(checkpoint / "evaluation-test.json")
    assert json.loads((checkpoint / "evaluation-test.json").read_text())["checkpoint"] == str(checkpoint)


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_not_a_checkpoint_is_one_line(tmp_path, capsys):
    assert evaluate.main([str(tmp_path)]) == 2
    assert _one_error_line(capsys) == (f"error: {tmp_path}: neither a checkpoint folder (no state.pt) nor an "
                                       "experiment folder with a summary.json naming one")


@pytest.mark.slow
def test_a_missing_checkpoint_is_one_line(experiment, tmp_path, capsys):
    moved = tmp_path / experiment.name
    shutil.copytree(experiment, moved, ignore=shutil.ignore_patterns("wandb"))
    relative = _best_checkpoint(experiment)
    shutil.rmtree(moved / relative)
    # Recorded relative to the experiment (an absolute path of an old summary would find the original).
    summary = json.loads((moved / "summary.json").read_text())
    summary["best"]["checkpoint"] = relative
    (moved / "summary.json").write_text(json.dumps(summary))
    assert evaluate.main([str(moved)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {moved}: the best trial's checkpoint {moved / summary['best']['checkpoint']} "
                           "is missing")


@pytest.mark.slow
@pytest.mark.parametrize("size", [0, 1000])
def test_a_truncated_checkpoint_is_one_line(experiment, tmp_path, capsys, size):
    checkpoint = experiment / _best_checkpoint(experiment)
    cut = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, cut)
    data = (checkpoint / "state.pt").read_bytes()
    (cut / "state.pt").write_bytes(data[:size])
    assert evaluate.main([str(cut), "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {cut / 'state.pt'}: not a readable checkpoint ({size} bytes; truncated")
    assert not (tmp_path / "out").exists()
