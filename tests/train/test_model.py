"""train.model on real timm models and real weight files (made here: no network, no mocks)."""

from __future__ import annotations

import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import safetensors.torch
import timm
import torch
from torch import nn

from train.config import CNNConfig, ConfigError, ModelConfig
from train.freeze import apply_frozen_bn_eval, set_backbone_trainable
from train.model import build_model, input_normalization
from train.pretrained import ENV_WEIGHTS, WeightsUnavailable
from train.small_cnn import SmallCNN

NAME = "mobilenetv3_small_050"
HUB_REPO = "timm/mobilenetv3_small_050.lamb_in1k"  # timm's hf_hub_id for NAME's default tag
NUM_CLASSES = 43
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


pytestmark = pytest.mark.usefixtures("isolated_hub")


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path]:
    """A 1000-class NAME state dict unlike any random init (every float tensor perturbed), saved 4 ways."""
    torch.manual_seed(1234)
    model = timm.create_model(NAME, num_classes=1000)
    state = {k: (v + 0.01 * torch.randn_like(v)) if v.is_floating_point() else v.clone()
             for k, v in model.state_dict().items()}
    root = tmp_path_factory.mktemp("weights")
    safetensors.torch.save_file(state, root / "file.safetensors")
    torch.save(state, root / "file.pth")
    (root / "flat").mkdir()
    torch.save(state, root / "flat" / f"{NAME}.bin")
    (root / "hubstyle" / NAME).mkdir(parents=True)
    safetensors.torch.save_file(state, root / "hubstyle" / NAME / "model.safetensors")
    return state, root


def _loss_backward(model: nn.Module, size: int, batch: int = 2) -> torch.Tensor:
    logits = model(torch.rand(batch, 3, size, size))
    logits.logsumexp(1).mean().backward()
    return logits


def _backbone_equal(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("classifier."))


# ------------------------------------------------------------------------------ forward / backward

@pytest.mark.parametrize("name", [NAME, "mobilenetv3_large_075"])
def test_timm_forward_backward(name):
    model = build_model(ModelConfig(name=name, drop_rate=0.2), NUM_CLASSES).train()
    logits = _loss_backward(model, size=32)
    assert logits.shape == (2, NUM_CLASSES)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("cnn, size", [
    (dict(), 16),
    (dict(blocks=5, stride=2, pool="none"), 16),
    (dict(blocks=8, width=2, kernel_size=7, padding=0, pool="avg"), 16),
    (dict(blocks=4, width=4, kernel_size=5, stride=2, padding=1, pool="max", dropout=0.5), 16),
    (dict(blocks=6, width=4, stride=3, pool="max"), 37),
])
def test_small_cnn_knobs_forward_backward(cnn, size):
    model = build_model(ModelConfig(name="small_cnn", cnn=CNNConfig(**cnn)), NUM_CLASSES).train()
    assert isinstance(model, SmallCNN)
    assert model.get_classifier().in_features == CNNConfig(**cnn).width * 2 ** (CNNConfig(**cnn).blocks - 1)
    logits = _loss_backward(model, size=size)
    assert logits.shape == (2, NUM_CLASSES)
    assert all(p.grad is not None for p in model.parameters())


def test_small_cnn_has_no_pretrained_weights():
    with pytest.raises(ConfigError, match="small_cnn has no ImageNet weights"):
        build_model(ModelConfig(name="small_cnn", pretrained=True), NUM_CLASSES)


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(name="mobilenetv3_smal_050"), NUM_CLASSES)
    message = str(info.value)
    assert message.startswith("model.name:") and "\n" not in message
    assert "mobilenetv3_small_050" in message and "timm.list_models()" in message


@pytest.mark.parametrize("pretrained", [False, True])
def test_unknown_pretrained_tag_is_one_line(pretrained):
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(name="mobilenetv3_small_100.nope", pretrained=pretrained), NUM_CLASSES)
    assert str(info.value) == ("model.name: 'mobilenetv3_small_100.nope': mobilenetv3_small_100 has no pretrained "
                               "tag 'nope'; allowed tags: lamb_in1k (or no tag: timm's default)")


def test_input_normalization():
    assert input_normalization(build_model(ModelConfig(name=NAME), 10)) == IMAGENET
    assert input_normalization(build_model(ModelConfig(name="small_cnn"), 10)) == IMAGENET


# ------------------------------------------------------------------------------ pretrained weights

@pytest.mark.parametrize("where", ["file.safetensors", "file.pth", "flat", "hubstyle", "env"])
def test_pretrained_from_local_weights(imagenet_like, monkeypatch, where):
    state, root = imagenet_like
    weights = None
    if where == "env":
        monkeypatch.setenv(ENV_WEIGHTS, str(root / "hubstyle"))
    else:
        weights = str(root / where)
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=NAME, pretrained=True, weights=weights), NUM_CLASSES)
    assert _backbone_equal(model, state)
    assert model.get_classifier().out_features == NUM_CLASSES  # the 1000-class head was dropped
    torch.manual_seed(0)
    random_init = build_model(ModelConfig(name=NAME), NUM_CLASSES)
    assert not torch.equal(random_init.conv_stem.weight, model.conv_stem.weight)


def test_pretrained_from_hub_cache_while_offline(imagenet_like):
    """Weights an earlier online run left in the Hugging Face cache are used with HF_HUB_OFFLINE=1."""
    state, root = imagenet_like
    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{HUB_REPO.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes((root / "file.safetensors").read_bytes())
    model = build_model(ModelConfig(name=NAME, pretrained=True), NUM_CLASSES)
    assert _backbone_equal(model, state)


def test_pretrained_offline_without_weights_fails_fast():
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        build_model(ModelConfig(name=NAME, pretrained=True), NUM_CLASSES)
    assert time.monotonic() - start < 10.0
    message = str(info.value)
    assert "\n" not in message and "model.weights" in message and ENV_WEIGHTS in message
    assert "HF_HUB_OFFLINE" in message


def test_missing_weights_path_is_named(tmp_path):
    missing = tmp_path / "nowhere" / f"{NAME}.safetensors"
    with pytest.raises(WeightsUnavailable, match=str(missing)):
        build_model(ModelConfig(name=NAME, pretrained=True, weights=str(missing)), NUM_CLASSES)
    with pytest.raises(WeightsUnavailable, match="has no mobilenetv3_small_050.safetensors"):
        build_model(ModelConfig(name=NAME, pretrained=True, weights=str(tmp_path)), NUM_CLASSES)


def test_weights_of_another_architecture_are_rejected(imagenet_like):
    _, root = imagenet_like
    with pytest.raises(ConfigError, match="could not be loaded into mobilenetv3_small_075") as info:
        build_model(ModelConfig(name="mobilenetv3_small_075", pretrained=True,
                                weights=str(root / "file.safetensors")), NUM_CLASSES)
    assert not isinstance(info.value, WeightsUnavailable)


# ------------------------------------------------------------------------------ frozen backbone

@pytest.mark.parametrize("name", [NAME, "small_cnn"])
def test_frozen_backbone_gets_no_updates(name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name), NUM_CLASSES)
    set_backbone_trainable(model, False)
    head = set(id(p) for p in model.get_classifier().parameters())
    assert all(p.requires_grad == (id(p) in head) for p in model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        model.train()
        assert apply_frozen_bn_eval(model) > 0
        optimizer.zero_grad()
        _loss_backward(model, size=32, batch=4)
        optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.weight", "classifier.bias"}  # incl. BN running stats: unchanged

    set_backbone_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())  # unfreezing restores train-mode BatchNorm
