"""results/export.py on real checkpoints of the training loop: files, model.json, parity with torch, bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from artifact.preprocess import Preprocessing
from results import export as export_cli
from results.checkpoints import load_checkpoint
from tests.helpers.deploy_models import MOBILENET, SMALL_CNN, experiment, exported_model, sign_data
from train.data.prepared import load_test


@pytest.fixture(scope="module")
def small_experiment(tmp_path_factory, tiny_data) -> Path:
    return experiment(tmp_path_factory, sign_data(tmp_path_factory, tiny_data), SMALL_CNN, "small_cnn")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, tiny_data, small_experiment) -> Path:
    return exported_model(tmp_path_factory, tiny_data)


def test_exports_the_best_trial_of_an_experiment(small_experiment, small_model, tmp_path_factory, tiny_data):
    files = sorted(p.name for p in small_model.iterdir())
    assert files == ["MODEL_CARD.md", "model.json", "model.onnx", "model.torchscript.pt"]
    assert not [p for p in small_model.parent.iterdir() if p.name.startswith(f".{small_model.name}.")]  # no temp left
    meta = json.loads((small_model / "model.json").read_text())
    summary = json.loads((small_experiment / "summary.json").read_text())
    assert meta["format_version"] == 1
    assert meta["source"]["checkpoint"] == str(small_experiment / summary["best"]["checkpoint"])  # relative: contract A
    assert meta["source"]["data_fingerprint"] == torch.load(Path(meta["source"]["checkpoint"]) / "state.pt",
                                                            weights_only=False)["data_fingerprint"]
    size = tiny_data["image_size"]
    expected_input = {"width": size, "height": size, "channels": 3, "channel_order": "RGB", "layout": "NCHW",
                      "dtype": "float32", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert {key: meta["input"][key] for key in expected_input} == expected_input
    # Synthetic signs have boxes and roi_crop is on: training cropped, so no JPEG draft, and callers crop.
    assert meta["input"]["resize"]["method"] == "bilinear" and meta["input"]["resize"]["jpeg_draft"] is False
    assert meta["roi"]["trained_on_sign_crops"] is True
    marker = json.loads((Path(sign_data(tmp_path_factory, tiny_data)["root"]) / "synthetic.json").read_text())
    assert meta["classes"] == [{"index": i, "id": i, "name": name}
                               for i, name in enumerate(marker["class_names"][:len(meta["classes"])])]
    assert len(meta["classes"]) == tiny_data["synthetic"]["num_classes"]
    last = summary["best"]["metrics"]
    assert meta["metrics"]["validation"]["val_acc"] == last["val_acc"] and meta["metrics"]["validation"]["epoch"] == 10
    parity = meta["metrics"]["parity"]
    assert parity["images"] == 24 and parity["onnxruntime"]["max_abs_logit_diff"] < 1e-4
    assert parity["onnxruntime"]["top1_agreement"] == 1.0 and parity["torchscript"]["top1_agreement"] == 1.0
    card = (small_model / "MODEL_CARD.md").read_text()
    for expected in ("small_cnn", "How it was searched", "search.yaml", meta["source"]["data_fingerprint"],
                     "onnxruntime vs torch", "| 5 | 5 |", "onnxruntime 1."):
        assert expected in card


def test_onnx_has_a_dynamic_batch_axis_and_opset_18(small_model):
    graph = onnx.load(str(small_model / "model.onnx"))
    assert {(o.domain, o.version) for o in graph.opset_import} >= {("", 18)}
    (images,), (logits,) = graph.graph.input, graph.graph.output
    assert images.name == "images" and logits.name == "logits"
    assert images.type.tensor_type.shape.dim[0].dim_param  # symbolic: any batch size


@pytest.mark.slow  # trains and exports a MobileNetV3 (~2 min on 2 loaded cores)
def test_mobilenetv3_exports_hardswish_and_matches_torch_on_real_test_images(tmp_path_factory, tiny_data, tmp_path,
                                                                             capsys):
    """In process (the same main() the CLI runs); the reference is a model built the training way
    (results/evaluate.py's loader: timm's default layers), independent of the export's own check."""
    folder = experiment(tmp_path_factory, tiny_data, MOBILENET, "mobilenet")
    checkpoint = folder / "trial_0001" / "checkpoint_0001"
    out = tmp_path / "mobilenet-model"
    assert export_cli.main([str(checkpoint), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert "HardSwish" in {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}

    meta = json.loads((out / "model.json").read_text())
    cfg, model, _ = load_checkpoint(checkpoint)
    test, _ = load_test(cfg.data)
    pre = Preprocessing.from_spec(meta["input"])
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    for count in (1, 7, len(test)):  # batch sizes other than the export's example of 2
        batch = pre.normalize(np.asarray(test.images[:count]))
        with torch.no_grad():
            expected = model(torch.from_numpy(batch)).numpy()
            traced = scripted(torch.from_numpy(batch)).numpy()
        got = session.run(["logits"], {"images": batch})[0]
        assert got.shape == (count, len(meta["classes"]))
        assert np.abs(got - expected).max() < 1e-4 and (got.argmax(1) == expected.argmax(1)).all()
        assert np.abs(traced - expected).max() < 1e-5


def test_a_failed_parity_check_publishes_nothing(small_experiment, tmp_path, capsys):
    out = tmp_path / "strict"
    # onnxruntime's float32 convolutions differ from torch's by ~1e-7: a tolerance of 1e-12 must fail.
    assert export_cli.main([str(small_experiment), "--out", str(out), "--atol", "1e-12"]) == 1
    error = _one_error_line(capsys)
    assert "disagree" in error and "nothing written" in error
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_input_is_one_line_and_exit_2(small_experiment, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert export_cli.main([str(tmp_path), "--out", out]) == 2
    assert "neither a checkpoint folder (no state.pt) nor an experiment folder" in _one_error_line(capsys)

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    none_finished = {**json.loads((small_experiment / "summary.json").read_text()), "best": None, "trials": []}
    (unfinished / "summary.json").write_text(json.dumps(none_finished))
    assert export_cli.main([str(unfinished), "--out", out]) == 2
    assert "no finished trial with a checkpoint" in _one_error_line(capsys)

    moved = tmp_path / "moved"
    moved.mkdir()
    summary = json.loads((small_experiment / "summary.json").read_text())
    (moved / "summary.json").write_text(json.dumps(summary))  # relative checkpoint path, not under this folder
    assert export_cli.main([str(moved), "--out", out]) == 2
    assert f"checkpoint {moved / summary['best']['checkpoint']} is missing" in _one_error_line(capsys)

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert export_cli.main([str(small_experiment), "--out", str(occupied)]) == 2
    assert f"--out {occupied} holds files the exporter did not write (notes.txt); refusing to replace it" \
        in _one_error_line(capsys)
    assert (occupied / "notes.txt").read_text() == "mine" and not Path(out).exists()


def test_an_earlier_export_with_the_users_files_is_never_deleted(small_experiment, small_model, tmp_path, capsys):
    """Was: an --out holding an earlier export and the user's notes.txt and sub/ was replaced whole, exit 0."""
    import shutil

    out = tmp_path / "models"
    shutil.copytree(small_model, out)
    (out / "notes.txt").write_text("mine")
    (out / "sub").mkdir()
    (out / "sub" / "eval.csv").write_text("a,b\n")
    before = (out / "model.json").read_text()
    assert export_cli.main([str(small_experiment), "--out", str(out)]) == 2
    assert _one_error_line(capsys) == (f"error: --out {out} holds files the exporter did not write (notes.txt, sub); "
                                       "refusing to replace it: give a new folder, or --force to write the export's "
                                       "files beside them")
    assert (out / "model.json").read_text() == before
    assert export_cli.main([str(small_experiment), "--out", str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "sub" / "eval.csv").read_text() == "a,b\n"
    assert (out / "model.json").read_text() != before  # a new export (its created time)
    assert sorted(p.name for p in out.iterdir()) == sorted(export_cli.EXPORT_FILES + ("notes.txt", "sub"))
    assert [p.name for p in tmp_path.iterdir()] == ["models"]  # no temp folder left
    capsys.readouterr()
    assert export_cli.main([str(small_experiment), "--out", str(tmp_path / "models-2")]) == 0  # a fresh folder


def test_an_interrupted_search_is_exported_with_a_warning_and_recorded(small_experiment, tmp_path, capsys):
    """Was: exit 0 and an unfinished 1-epoch trial shipped without a word."""
    import shutil

    experiment = tmp_path / "interrupted"
    shutil.copytree(small_experiment, experiment)
    summary = json.loads((experiment / "summary.json").read_text())
    summary["interrupted"] = True
    summary["epochs"] = summary["best"]["epochs"] + 5  # the search meant 5 more epochs than the trial trained
    for trial in [summary["best"], *summary["trials"]]:
        trial["status"] = "UNFINISHED"
    (experiment / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "model"
    assert export_cli.main([str(experiment), "--out", str(out)]) == 0
    trained, meant = summary["best"]["epochs"], summary["epochs"]
    warning = capsys.readouterr().err.strip().splitlines()
    assert warning == [f"warning: {experiment} is an interrupted search: trial {summary['best']['trial_id']} "
                       f"(UNFINISHED) trained {trained} of {meant} epochs; model.json and MODEL_CARD.md record it "
                       "(continue the search with --resume, then export again)"]
    search = json.loads((out / "model.json").read_text())["source"]["search"]
    assert (search["search_interrupted"], search["trial_epochs"], search["epochs"], search["trial_status"]) == \
        (True, trained, meant, "UNFINISHED")
    assert f"**The search was interrupted**: this trial (UNFINISHED) trained {trained} of {meant} epochs" \
        in (out / "MODEL_CARD.md").read_text()
