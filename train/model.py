"""Build the classifier of one trial: any timm model (MobileNetV3 by default) or the configurable ``small_cnn``.

Pretrained ImageNet weights never come from nowhere: :func:`build_model` with ``pretrained: true`` loads
them from a local file (``model.weights`` or ``$SIGNSEARCH_WEIGHTS``), else from the local Hugging Face /
torch-hub cache, else from timm's hub download; when none of these can deliver it raises
:class:`WeightsUnavailable` (one line saying how to provide weights) instead of silently training from a
random init. Offline (``HF_HUB_OFFLINE=1``, or no route to the hub) that error comes within seconds rather
than after huggingface_hub's ~45 s of retries.

Feature-extraction fine-tuning: :func:`set_backbone_trainable` freezes everything but the classifier head,
and :func:`apply_frozen_bn_eval`, called by the training loop after every ``model.train()``, keeps the
frozen BatchNorm layers in eval mode so their running statistics stay the pretrained ones.
"""

from __future__ import annotations

import difflib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from train.config import CNNConfig, ConfigError, ModelConfig

# ImageNet statistics (timm.data.IMAGENET_DEFAULT_MEAN/STD), used by small_cnn without importing timm.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ENV_WEIGHTS = "SIGNSEARCH_WEIGHTS"
"""Environment variable naming a weights file or directory, used when ``model.weights`` is not set."""

SMALL_CNN = "small_cnn"
MOBILENETV3_NAMES = ("mobilenetv3_small_050", "mobilenetv3_small_075", "mobilenetv3_small_100",
                     "mobilenetv3_large_075", "mobilenetv3_large_100")
"""The model family the search is built around (all of them have ImageNet weights in timm)."""

WEIGHT_EXTENSIONS = (".safetensors", ".pth", ".bin")
HUB_DIR_FILES = ("model.safetensors", "pytorch_model.bin")
"""File names inside a Hugging Face-style ``<model_name>/`` folder, in order of preference."""

HUB_PROBE_TIMEOUT_S = 5.0
"""One HEAD request to the hub with this timeout decides whether it is reachable at all; without the
probe timm's download retries 5 times per candidate file (about 45 s offline) before failing."""

_TRUE = {"1", "on", "yes", "true"}


_SMALL_CNN_PRETRAINED = ("model.pretrained: small_cnn has no ImageNet weights; set it to false "
                         "or pick a timm model such as mobilenetv3_small_050")


class WeightsUnavailable(ConfigError):
    """``pretrained: true`` but no ImageNet weights can be had; the message says how to provide them."""


# --------------------------------------------------------------------------------------------- building

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
    local = _explicit_weights_file(cfg)
    if local is not None:
        return _create_from_file(cfg.name, local, kwargs)
    cached = _hub_cached_file(cfg.name)
    if cached is not None:
        return _create_from_file(cfg.name, cached, kwargs, custom_load=_pretrained_cfg(cfg.name).custom_load)
    return _create_from_hub(cfg.name, kwargs)


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


def _create_from_file(name: str, path: Path, kwargs: dict[str, Any], custom_load: Any = False) -> nn.Module:
    """timm's own loader reads the file (safetensors or torch pickle) and adapts the classifier."""
    import timm

    overlay = dict(file=str(path), custom_load=custom_load)
    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except Exception as error:  # corrupt file, or a checkpoint of another architecture
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConfigError(f"model.weights: {path} could not be loaded into {name} "
                          f"({type(error).__name__}: {detail})") from error


def _create_from_hub(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's download, attempted only when the hub answers at all."""
    import timm

    reason = _hub_unreachable_reason(name)
    if reason:
        raise _unavailable(name, reason)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as error:  # network dropped, or the file vanished from the hub
        raise _unavailable(name, f"hub download failed: {type(error).__name__}") from error


def _unavailable(name: str, reason: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"model.weights: no ImageNet weights for {name} ({reason}); set model.weights or ${ENV_WEIGHTS} "
        f"to a .safetensors/.pth/.bin file or a directory holding {name}.safetensors (or {name}/model.safetensors), "
        f"or give this machine internet access to the Hugging Face hub")


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
    if _explicit_weights_file(cfg) is not None or _hub_cached_file(cfg.name) is not None:
        return
    reason = _hub_unreachable_reason(cfg.name)
    if reason:
        raise _unavailable(cfg.name, reason)


# ------------------------------------------------------------------------------- locating weights

def _explicit_weights_file(cfg: ModelConfig) -> Optional[Path]:
    """The file named by ``model.weights`` (else ``$SIGNSEARCH_WEIGHTS``), or None when neither is set.

    A path that is given but unusable is an error rather than a reason to try the network: the user
    asked for local weights, and a silent download (or a hang offline) would hide the typo.
    """
    key, raw = ("model.weights", cfg.weights) if cfg.weights else (f"${ENV_WEIGHTS}", os.environ.get(ENV_WEIGHTS))
    if not raw:
        return None
    path = Path(raw).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise _unavailable(cfg.name, f"{key} path {path} does not exist")
    for candidate in _directory_candidates(path, cfg.name):
        if candidate.is_file():
            return candidate
    raise _unavailable(cfg.name, f"{key} directory {path} has no {cfg.name}.safetensors|.pth|.bin "
                                 f"or {cfg.name}/{'|'.join(HUB_DIR_FILES)}")


def _directory_candidates(directory: Path, name: str) -> Iterable[Path]:
    """Files a weights directory may hold for ``name``: flat ``<stem><ext>`` first, then HF-style folders.

    Stems are the name as configured, the bare architecture and ``<architecture>.<default tag>`` (the
    folder name of a ``timm/<architecture>.<tag>`` hub snapshot), so either naming works.
    """
    architecture = name.split(".", 1)[0]
    pcfg = _pretrained_cfg(name)
    tagged = [f"{architecture}.{pcfg.tag}"] if pcfg is not None and pcfg.tag else []
    stems = dict.fromkeys([name, architecture, *tagged])
    for stem in stems:
        for ext in WEIGHT_EXTENSIONS:
            yield directory / f"{stem}{ext}"
    for stem in stems:
        for filename in HUB_DIR_FILES:
            yield directory / stem / filename


def _pretrained_cfg(name: str) -> Any:
    """timm's PretrainedCfg of ``name`` (the default tag when none is given)."""
    import timm

    return timm.models.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(name.split(".", 1)[0])


def _hub_files(name: str) -> tuple[Optional[str], Optional[str], list[str]]:
    """(repo id, revision, candidate file names) timm would download for ``name``; repo None if not on the hub."""
    pcfg = _pretrained_cfg(name)
    if pcfg is None or not pcfg.hf_hub_id:
        return None, None, []
    repo_id, _, revision = pcfg.hf_hub_id.partition("@")
    filenames = [pcfg.hf_hub_filename] if pcfg.hf_hub_filename else list(HUB_DIR_FILES)
    return repo_id, revision or None, filenames


def _hub_cached_file(name: str) -> Optional[Path]:
    """Weights already in the local Hugging Face or torch-hub cache: usable with no network at all."""
    repo_id, revision, filenames = _hub_files(name)
    if repo_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            filenames = []
        for filename in filenames:
            found = try_to_load_from_cache(repo_id, filename, revision=revision)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    pcfg = _pretrained_cfg(name)
    if pcfg is not None and pcfg.url:
        # timm's download_cached_file keeps url weights under <torch hub dir>/checkpoints/<basename>.
        basename = os.path.basename(urllib.parse.urlparse(pcfg.url).path)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / basename
        if cached.is_file():
            return cached
    return None


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now: huggingface_hub reads them once at import."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if any(flag.strip().lower() in _TRUE for flag in flags):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _hub_unreachable_reason(name: str) -> str:
    """Why timm's download cannot work right now, or "" when it may: one short probe, no retries."""
    if _hub_offline():
        return "HF_HUB_OFFLINE is set and the weights are not in the local cache"
    repo_id, revision, filenames = _hub_files(name)
    pcfg = _pretrained_cfg(name)
    if repo_id:
        return _probe_hf_hub(repo_id, revision, filenames[0])
    if pcfg is not None and pcfg.url:
        return _probe_url(pcfg.url)
    return "timm lists no pretrained weights for it"


def _probe_hf_hub(repo_id: str, revision: Optional[str], filename: str) -> str:
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:
        return "huggingface_hub is not installed"
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=HUB_PROBE_TIMEOUT_S)
    except HfHubHTTPError:
        return ""  # the hub answered (e.g. 404 for a .safetensors that does not exist): timm may go on
    except Exception as error:  # DNS failure, refused or timed-out connection, proxy error
        return f"Hugging Face hub unreachable: {type(error).__name__}"
    return ""


def _probe_url(url: str) -> str:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HUB_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return ""  # the server answered
    except (urllib.error.URLError, OSError) as error:
        return f"{urllib.parse.urlparse(url).netloc} unreachable: {type(error).__name__}"
    return ""


# ------------------------------------------------------------------------------------ fine-tuning

def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


def _classifier_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the classifier head, as timm's ``get_classifier()`` (tuple for split heads) names it."""
    head = _unwrap(model).get_classifier()
    heads = head if isinstance(head, (tuple, list)) else (head,)
    return [p for module in heads if isinstance(module, nn.Module) for p in module.parameters()]


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze every parameter except the classifier head, which always trains.

    Frozen parameters get ``requires_grad=False``, so autograd skips them and optimizers (AdamW/SGD skip
    parameters whose ``.grad`` is None) neither step nor weight-decay them. BatchNorm layers follow: see
    :func:`apply_frozen_bn_eval`, which this function applies at once when the model is in train mode.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(trainable)
    for parameter in _classifier_parameters(model):
        parameter.requires_grad_(True)
    if model.training:
        model.train()  # undo an earlier apply_frozen_bn_eval on unfreezing; then re-apply for what stays frozen
        apply_frozen_bn_eval(model)


def apply_frozen_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose affine parameters are all frozen into eval mode; returns how many.

    Call after every ``model.train()`` (which flips all layers back to train). Usual fine-tuning practice
    (timm's ``freeze_batch_norm_2d``, torchvision detection backbones): a frozen backbone should compute
    exactly the features it was pretrained with, so its BatchNorm layers normalise with the pretrained
    running statistics and do not update them from the small fine-tuning batches. BatchNorm without
    affine parameters is left alone (nothing marks it frozen).
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params) and module.training:
                module.eval()
                count += 1
    return count


def input_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) for inputs in [0, 1]: the values the model's weights were trained with."""
    model = _unwrap(model)
    if isinstance(model, SmallCNN):
        return IMAGENET_MEAN, IMAGENET_STD
    import timm.data

    data_cfg = timm.data.resolve_model_data_config(model)
    return tuple(float(m) for m in data_cfg["mean"]), tuple(float(s) for s in data_cfg["std"])


# -------------------------------------------------------------------------------------- small CNN

class _ConvBlock(nn.Module):
    """conv -> batch norm -> ReLU -> 2x2 pool, with guards that keep the feature map at least 1 px."""

    def __init__(self, in_channels: int, out_channels: int, cfg: CNNConfig):
        super().__init__()
        padding = cfg.kernel_size // 2 if cfg.padding is None else cfg.padding
        self.conv = nn.Conv2d(in_channels, out_channels, cfg.kernel_size, cfg.stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "none": nn.Identity()}[cfg.pool]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(self._pad_to_kernel(x))))
        # Pool only while the map is larger than 2 px, so deep stacks on small images end at >= 1 px
        # (e.g. 16 px, 8 blocks: 16 -> 8 -> 4 -> 2 -> 2 ...) instead of failing on an empty map.
        if min(x.shape[-2:]) > 2:
            x = self.pool(x)
        return x

    def _pad_to_kernel(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad a map smaller than the kernel (after the conv's own padding) so the conv yields 1 px."""
        kernel, pad = self.conv.kernel_size[0], self.conv.padding[0]
        short_h = max(0, kernel - (x.shape[-2] + 2 * pad))
        short_w = max(0, kernel - (x.shape[-1] + 2 * pad))
        if short_h or short_w:
            x = F.pad(x, (short_w // 2, short_w - short_w // 2, short_h // 2, short_h - short_h // 2))
        return x


class SmallCNN(nn.Module):
    """The configurable CNN (``small_cnn``): ``blocks`` conv blocks -> global average pool -> dropout -> linear.

    Block ``i`` has ``width * 2**i`` channels. Works for any input of at least 16 px (in fact any >= 1 px)
    with every valid :class:`CNNConfig`: pooling stops once the map is <= 2 px, and a map smaller than
    the kernel is zero-padded so a stride or padding-0 conv never produces an empty map.
    """

    def __init__(self, cfg: CNNConfig, num_classes: int, in_channels: int = 3):
        super().__init__()
        widths = [cfg.width * 2 ** i for i in range(cfg.blocks)]
        self.features = nn.Sequential(*(_ConvBlock(c_in, c_out, cfg)
                                        for c_in, c_out in zip([in_channels] + widths[:-1], widths)))
        self.num_features = widths[-1]
        self.num_classes = num_classes
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def get_classifier(self) -> nn.Module:
        """The head, named like timm's method so freezing treats both model kinds alike."""
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.global_pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(features))
