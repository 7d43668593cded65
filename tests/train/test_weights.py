"""train.weights: staging timm weights as <model>.safetensors files that build_model reads offline.

No network here: the download itself cannot run, so the writer is tested on a real timm model's state
dict, and the whole ``fetch`` on weights placed in a real (temporary) Hugging Face hub cache, which is
where timm's download leaves them on a machine with internet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import safetensors
import timm
import torch

from tests.conftest import REPO
from train.config import ModelConfig
from train.model import build_model
from train.pretrained import ENV_WEIGHTS
from train.weights import FetchError, fetch, main, write_weights

NAME = "mobilenetv3_small_100"
TAGGED = "mobilenetv3_small_100.lamb_in1k"  # timm's default tag of NAME: its hub repo is timm/<TAGGED>
NUM_CLASSES = 43


pytestmark = pytest.mark.usefixtures("isolated_hub")


@pytest.fixture(scope="module")
def imagenet_like() -> dict[str, torch.Tensor]:
    """The state dict of a real 1000-class NAME (random init with a fixed seed)."""
    torch.manual_seed(7)
    return timm.create_model(NAME, pretrained=False).state_dict()


def _load(name: str, directory: Path, num_classes: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)  # another init than imagenet_like's, so equality below means "loaded from the file"
    cfg = ModelConfig(name=name, pretrained=True, weights=str(directory))
    return build_model(cfg, num_classes).state_dict()


def test_written_weights_load_exactly_through_model_weights(imagenet_like, tmp_path):
    path = write_weights(NAME, imagenet_like, tmp_path / "weights", source="test")
    assert path == tmp_path / "weights" / f"{NAME}.safetensors"
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temp file left behind
    with safetensors.safe_open(path, "pt") as handle:
        assert handle.metadata()["model"] == NAME

    same = _load(NAME, path.parent, 1000)
    assert same.keys() == imagenet_like.keys()
    assert all(torch.equal(same[k], v) for k, v in imagenet_like.items())

    head = timm.create_model(NAME).get_classifier()
    head_keys = {k for k in imagenet_like if k.startswith("classifier.")}
    assert head_keys and head.out_features == 1000
    other = _load(NAME, path.parent, NUM_CLASSES)  # a trial's own head; the backbone is ImageNet's
    assert other["classifier.weight"].shape[0] == NUM_CLASSES
    assert all(torch.equal(other[k], v) for k, v in imagenet_like.items() if k not in head_keys)


def test_a_tagged_name_serves_trials_naming_the_bare_architecture(imagenet_like, tmp_path):
    write_weights(TAGGED, imagenet_like, tmp_path)
    loaded = _load(NAME, tmp_path, 1000)
    assert all(torch.equal(loaded[k], v) for k, v in imagenet_like.items())


def test_tensors_sharing_storage_are_written_as_separate_tensors(tmp_path):
    weight = torch.randn(4, 3)
    path = write_weights("tied", {"encoder.weight": weight, "decoder.weight": weight, "t": weight.t()}, tmp_path)
    with safetensors.safe_open(path, "pt") as handle:
        assert torch.equal(handle.get_tensor("decoder.weight"), weight)
        assert torch.equal(handle.get_tensor("t"), weight.t())


def test_fetch_stages_the_weights_timm_would_use_from_the_local_hub_cache(imagenet_like, tmp_path):
    """Offline, but an earlier online run left the weights in the hub cache: fetch stages exactly them."""
    snapshot = (Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--timm--{TAGGED}" / "snapshots" / ("0" * 40))
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    write_weights("model", imagenet_like, snapshot)  # model.safetensors: the file name of timm's hub repos

    [path] = fetch([NAME], tmp_path / "staged")
    assert path.name == f"{NAME}.safetensors"
    loaded = _load(NAME, path.parent, 1000)
    assert all(torch.equal(loaded[k], v) for k, v in imagenet_like.items())


def test_offline_without_cached_weights_is_one_line_fast_and_writes_nothing(tmp_path, capsys):
    start = time.monotonic()
    assert main(["fetch", NAME, "--to", str(tmp_path / "staged")]) == 2
    assert time.monotonic() - start < 10.0  # no download retries (about 45 s) before the answer
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: fetch: {NAME}: ") and "HF_HUB_OFFLINE" in err
    assert not (tmp_path / "staged").exists()


@pytest.mark.parametrize("name, expected", [
    ("mobilenetv3_smal_100", "unknown model; did you mean mobilenetv3_small_100"),
    ("mobilenetv3_small_100.nope", f"unknown pretrained tag; allowed: {TAGGED}"),
    ("small_cnn", "small_cnn has no ImageNet weights"),
])
def test_a_bad_name_is_one_line_before_anything_is_fetched(name, expected, tmp_path, capsys):
    assert main(["fetch", NAME, name, "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: fetch: {name}: {expected}" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FetchError):
        fetch([name], tmp_path)


@pytest.mark.slow  # the CLI as a process (torch imports)
def test_the_cli_exits_2_with_one_line_when_the_hub_is_unreachable(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "th"),
           "PYTHONPATH": str(REPO)}
    env.pop(ENV_WEIGHTS, None)
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-m", "train.weights", "fetch", NAME, "--to", str(tmp_path / "w")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "HF_HUB_OFFLINE" in done.stderr, done.stderr
    assert done.stdout == "" and not (tmp_path / "w").exists()
