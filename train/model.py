"""Build the classifier of one trial: any timm model (MobileNetV3 by default) or the configurable ``small_cnn``,
and say what inputs it expects.

Pretrained weights come through :mod:`train.pretrained` (a local file, the local hub cache or the hub;
:class:`~train.pretrained.WeightsUnavailable` when none can deliver); fine-tuning a frozen backbone is
:mod:`train.freeze`; the ``small_cnn`` network is :mod:`train.small_cnn`.
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Any

from torch import nn

from train.config import ConfigError, ModelConfig
from train.pretrained import (
    create_from_file,
    create_from_hub,
    explicit_weights_file,
    hub_cached_file,
    hub_unreachable_reason,
    pretrained_cfg,
    unavailable,
)
from train.small_cnn import SmallCNN

# ImageNet statistics (timm.data.IMAGENET_DEFAULT_MEAN/STD), used by small_cnn without importing timm.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SMALL_CNN = "small_cnn"
MOBILENETV3_NAMES = ("mobilenetv3_small_050", "mobilenetv3_small_075", "mobilenetv3_small_100",
                     "mobilenetv3_large_075", "mobilenetv3_large_100")
"""The model family the search is built around (all of them have ImageNet weights in timm)."""

_SMALL_CNN_PRETRAINED = ("model.pretrained: small_cnn has no ImageNet weights; set it to false "
                         "or pick a timm model such as mobilenetv3_small_050")


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Create the network named by ``cfg.name`` with a ``num_classes``-way classifier head.

    ``cfg.weights`` is only consulted when ``cfg.pretrained`` is true. Pretrained weights keep every
    backbone tensor; timm drops the 1000-class ImageNet head whenever ``num_classes`` differs from it,
    so the head starts from a fresh init. Raises :class:`ConfigError` for an unknown name or unusable
    weights file and :class:`WeightsUnavailable` when pretrained weights cannot be found or downloaded.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes: got {num_classes!r}, allowed: >= 1")
    if cfg.name == SMALL_CNN:
        if cfg.pretrained:
            raise ConfigError(_SMALL_CNN_PRETRAINED)
        return SmallCNN(cfg.cnn, num_classes)
    import timm  # here, not at the top: ~2 s of imports that small_cnn trials never need

    _check_timm_name(cfg.name)
    kwargs: dict[str, Any] = dict(num_classes=num_classes, drop_rate=cfg.drop_rate)
    if not cfg.pretrained:
        return timm.create_model(cfg.name, pretrained=False, **kwargs)
    local = explicit_weights_file(cfg)
    if local is not None:
        return create_from_file(cfg.name, local, kwargs)
    cached = hub_cached_file(cfg.name)
    if cached is not None:
        return create_from_file(cfg.name, cached, kwargs, custom_load=pretrained_cfg(cfg.name).custom_load)
    return create_from_hub(cfg.name, kwargs)


def _check_timm_name(name: str) -> None:
    """Reject a name timm does not know; an optional ``.tag`` must be one timm lists for it (``.lamb_in1k``)."""
    import timm

    arch, _, tag = name.partition(".")
    if timm.is_model(arch):
        if not tag:
            return
        # timm.is_model ignores the tag; create_model would fail on an unknown one with a RuntimeError.
        tagged = timm.list_pretrained(f"{arch}.*")
        if name in tagged:
            return
        known = ", ".join(t.split(".", 1)[1] for t in tagged) or "none"
        raise ConfigError(f"model.name: {name!r}: {arch} has no pretrained tag {tag!r}; allowed tags: {known} "
                          f"(or no tag: timm's default)")
    close = difflib.get_close_matches(name, timm.list_models(), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(f"model.name: unknown model {name!r}; {hint}allowed: {SMALL_CNN}, "
                      f"{', '.join(MOBILENETV3_NAMES)} or any other name in timm.list_models()")


def check_model_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is ``small_cnn`` or a model timm knows (imports timm)."""
    if name != SMALL_CNN:
        _check_timm_name(name)


def check_weights(cfg: ModelConfig) -> None:
    """Raise what :func:`build_model` would raise for ``cfg``'s pretrained weights, without building it.

    A search checks this on its driver, before Ray starts, for every model that can be sampled with
    ``pretrained: true``: a file named by ``model.weights`` / ``$SIGNSEARCH_WEIGHTS`` must exist, else
    the weights must be in the local hub cache or the hub must answer (one short probe).
    """
    if not cfg.pretrained:
        return
    if cfg.name == SMALL_CNN:
        raise ConfigError(_SMALL_CNN_PRETRAINED)
    _check_timm_name(cfg.name)
    if explicit_weights_file(cfg) is not None or hub_cached_file(cfg.name) is not None:
        return
    reason = hub_unreachable_reason(cfg.name)
    if reason:
        raise unavailable(cfg.name, reason)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


def input_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) for inputs in [0, 1]: the values the model's weights were trained with."""
    model = unwrap(model)
    if isinstance(model, SmallCNN):
        return IMAGENET_MEAN, IMAGENET_STD
    import timm.data

    data_cfg = timm.data.resolve_model_data_config(model)
    return tuple(float(m) for m in data_cfg["mean"]), tuple(float(s) for s in data_cfg["std"])


def build_exportable(model_cfg, num_classes: int):
    """The trial's network (:func:`build_model`) with timm's exportable layers, in eval mode; the weights are
    the builder's (random unless model_cfg.pretrained)."""
    layers = contextlib.nullcontext()
    if model_cfg.name != SMALL_CNN:
        import timm.layers

        layers = timm.layers.set_layer_config(scriptable=True, exportable=True, no_jit=True)
    with layers:
        return build_model(model_cfg, num_classes=num_classes).eval()
