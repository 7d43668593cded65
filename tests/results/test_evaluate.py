"""results/evaluate.py on a real checkpoint of the training loop."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from train.config import parse
from train.loop import run_local

EVALUATE = REPO / "results" / "evaluate.py"


def test_evaluates_best_checkpoint_of_an_experiment_on_the_test_split(tiny_data, tmp_path):
    cfg = parse({"data": tiny_data, "model": {"name": "small_cnn", "cnn": {"blocks": 2, "width": 8}},
                 "epochs": 2, "optim": {"lr": 1e-2, "batch_size": 32}})
    run_local(cfg, checkpoint_root=tmp_path / "trial")
    checkpoint = tmp_path / "trial" / "checkpoint_0002"
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "summary.json").write_text(json.dumps({"best": {"checkpoint": str(checkpoint)}}))

    result = subprocess.run([sys.executable, str(EVALUATE), str(experiment)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = checkpoint / "evaluation.json"
    assert result.stdout.strip().splitlines()[-1] == str(out)
    evaluation = json.loads(out.read_text())
    classes = tiny_data["synthetic"]["num_classes"]
    assert evaluation["split"] == "test" and len(evaluation["class_names"]) == classes
    assert evaluation["images"] == classes * tiny_data["synthetic"]["test_per_class"]
    matrix = evaluation["confusion_matrix"]
    assert sum(map(sum, matrix)) == evaluation["images"]
    assert evaluation["accuracy"] == sum(matrix[i][i] for i in range(classes)) / evaluation["images"]


def test_not_a_checkpoint_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(EVALUATE), str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: neither a checkpoint folder (no state.pt) nor an experiment folder with a summary.json naming one"]
