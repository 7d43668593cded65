"""results/predict.py on a model exported in the test: known classes of test signs, without torch; the same
pixels as training's loader; bad input is one line and exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artifact.preprocess import ImageRejected, Preprocessing
from tests.conftest import REPO
from tests.helpers.deploy_models import PREDICT, exported_model, sign_data, sign_files

# Runs predict.py with torch and Ray made unimportable: predict must need neither.
WITHOUT_TORCH = ("import runpy, sys; sys.modules.update(torch=None, ray=None); sys.argv = sys.argv[1:]; "
                 "runpy.run_path(sys.argv[0], run_name='__main__')")


def predict(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(PREDICT), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data) -> Path:
    return exported_model(tmp_path_factory, tiny_data)


@pytest.fixture(scope="module")
def signs(tmp_path_factory, tiny_data, model_dir) -> list[tuple[Path, int]]:
    return sign_files(sign_data(tmp_path_factory, tiny_data), tmp_path_factory.mktemp("signs"))


def test_json_lines_give_the_known_classes_of_test_signs_without_torch(model_dir, signs):
    folder = signs[0][0].parent
    result = predict(model_dir, folder, "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    known = {str(path): label for path, label in signs}
    names = [c["name"] for c in json.loads((model_dir / "model.json").read_text())["classes"]]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["path"] for line in lines) == sorted(known)  # every PNG, JPEG and PPM in the folder
    for line in lines:
        top = line["top"]
        assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
        assert top[0]["index"] == known[line["path"]] and top[0]["class"] == names[top[0]["index"]], line
        assert 0.0 < top[0]["probability"] + top[1]["probability"] <= 1.0 + 1e-9


def test_plain_output_lists_top_k_per_image(model_dir, signs):
    (path, label), = signs[:1]
    result = predict(model_dir, path)
    assert result.returncode == 0, result.stderr
    names = [c["name"] for c in json.loads((model_dir / "model.json").read_text())["classes"]]
    line, = result.stdout.splitlines()
    assert line.startswith(f"{path}: {names[label]} ") and line.count(",") == 2  # default --top-k 3


def test_preprocessing_gives_the_training_loaders_pixels(signs, tmp_path):
    """artifact/preprocess.py repeats train.data.load_image without importing it: same bytes, for the crop
    convention (no JPEG draft) and for sets without boxes (JPEG draft), in every colour mode."""
    import torch

    from train.data import load_image

    rng = np.random.default_rng(0)
    extra = {"big.jpg": Image.fromarray(rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)),
             "rgba.png": Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8), "RGBA"),
             "grey.jpg": Image.fromarray(rng.integers(0, 256, (90, 70), dtype=np.uint8), "L"),
             "palette.gif": Image.fromarray(rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)).convert("P")}
    for name, image in extra.items():
        image.save(tmp_path / name)
    paths = [path for path, _ in signs[:3]] + [tmp_path / name for name in extra]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for draft in (False, True):
        pre = Preprocessing(24, 24, mean, std, "bilinear", jpeg_draft=draft)
        for path in paths:
            with Image.open(path) as image:
                whole = (0, 0, image.width - 1, image.height - 1)
            # roi_crop with the whole image as box: training's path without draft; no box: with draft.
            expected = load_image(path, whole, 24, True) if not draft else load_image(path, None, 24, False)
            assert np.array_equal(pre.decode(path), expected), (path, draft)
    pixels = np.stack([pre.decode(path) for path in paths])
    # The training loop's normalisation (train/loop.py Trainer._batch), in torch.
    x = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0) - torch.tensor(mean).view(1, 3, 1, 1)) \
        / torch.tensor(std).view(1, 3, 1, 1)
    assert np.array_equal(pre.normalize(pixels), x.numpy())


def _incompatible(model_dir: Path, tmp_path: Path, case: str) -> Path:
    folder = tmp_path / case
    if case == "not-an-export":
        folder.mkdir()
        return folder
    shutil.copytree(model_dir, folder)
    meta = json.loads((folder / "model.json").read_text())
    if case == "newer-format":
        (folder / "model.json").write_text(json.dumps({**meta, "format_version": 2}))
    elif case == "missing-onnx":
        (folder / "model.onnx").unlink()
    elif case == "no-preprocessing":
        del meta["input"]
        (folder / "model.json").write_text(json.dumps(meta))
    elif case == "other-onnx":  # a model.onnx of another export (different input size) beside this model.json
        (folder / "model.json").write_text(json.dumps({**meta, "input": {**meta["input"], "width": 32, "height": 32}}))
    return folder


@pytest.mark.parametrize("case, message", [
    ("not-an-export", "no model.json, so not a folder written by results/export.py"),
    ("newer-format", "format_version 2 is not supported (this code reads format_version 1)"),
    ("missing-onnx", "missing model.onnx (an incomplete export)"),
    ("no-preprocessing", "malformed (missing key 'input')"),
    ("other-onnx", "do not match model.json"),
])
def test_an_incompatible_model_folder_is_one_line(model_dir, signs, tmp_path, case, message):
    folder = _incompatible(model_dir, tmp_path, case)
    result = predict(folder, signs[0][0])
    assert result.returncode == 2 and result.stdout == ""
    error, = result.stderr.strip().splitlines()
    assert error.startswith(f"error: {folder}") and message in error


def test_bad_images_are_one_line(model_dir, signs, tmp_path):
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    text = tmp_path / "sign.png"
    text.write_text("this is not a PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(signs[0][0].read_bytes()[:60])
    cases = [(empty, "no images in this folder or below"), (text, "not an image"),
             (truncated, "truncated or corrupt PNG image"), (tmp_path / "missing.png", "no such file or folder")]
    for path, message in cases:
        result = predict(model_dir, signs[1][0], path)  # a good image first: nothing is printed for it either
        assert result.returncode == 2 and result.stdout == "", path
        error, = result.stderr.strip().splitlines()
        assert error.startswith(f"error: {path}") and message in error, error


def test_a_16_bit_png_predicts_as_its_8_bit_twin(model_dir, signs, tmp_path):
    """A 16-bit grey PNG (mode I;16) is scaled to 8 bits, not clipped to a white square: predict.py gives it
    exactly the answer of the same picture saved as 8-bit grey."""
    with Image.open(signs[0][0]) as image:
        grey = np.asarray(image.convert("L"))
    eight, sixteen = tmp_path / "grey8.png", tmp_path / "grey16.png"
    Image.fromarray(grey).save(eight)
    Image.fromarray(grey.astype(np.uint16) * 257).save(sixteen)  # v * 257: exactly v again in 8 bits
    with Image.open(sixteen) as image:
        assert image.mode.startswith("I")  # really read back as 16-bit
    results = [predict(model_dir, path, "--json") for path in (eight, sixteen)]
    assert [r.returncode for r in results] == [0, 0], results[1].stderr
    tops = [json.loads(r.stdout)["top"] for r in results]
    assert tops[0] == tops[1]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height (8-bit grey) with almost no pixel data: Pillow opens it lazily, so its
    size is all that is read, and a 20000 x 20000 image costs nothing to make."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_an_image_pillow_calls_a_decompression_bomb_is_the_max_pixels_line(model_dir, signs, tmp_path):
    """Over twice Image.MAX_IMAGE_PIXELS Pillow refuses the image on opening, over it once it warns: either way the
    one line is --max-pixels', without Pillow's "DOS attack" text."""
    huge, big = tmp_path / "huge.png", tmp_path / "big.png"
    huge.write_bytes(_png_header(20000, 20000))
    big.write_bytes(_png_header(10000, 10000))
    for path, size in ((huge, "400000000 pixels"), (big, "10000x10000 = 100000000 pixels")):
        result = predict(model_dir, signs[0][0], path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"error: {path}: {size}, above the limit of 40000000 pixels\n"
    pre = Preprocessing(32, 32, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ImageRejected) as raised:  # --max-pixels raised past what Pillow opens at all
        pre.decode(huge.read_bytes(), max_pixels=10**9, name="huge.png")
    assert raised.value.status == 413
    assert str(raised.value) == ("huge.png: 400000000 pixels, above Pillow's limit of 178956970 pixels (twice "
                                 "PIL.Image.MAX_IMAGE_PIXELS)")


@pytest.mark.parametrize("flag, value, message", [
    ("--threads", "-1", "error: --threads -1: must be >= 0 (0: every core)"),
    ("--top-k", "0", "error: --top-k 0: must be >= 1"),
    ("--max-pixels", "0", "error: --max-pixels 0: must be >= 1"),
])
def test_a_bad_number_is_one_line_exit_2(flag, value, message, tmp_path, capsys):
    from results.predict import main

    assert main([str(tmp_path), "--benchmark", flag, value]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", message + "\n")
