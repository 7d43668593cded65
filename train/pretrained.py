"""Where pretrained ImageNet weights come from, and loading them through timm.

In order: a local file (``model.weights`` or ``$SIGNSEARCH_WEIGHTS``: a file, or a directory holding
``<name>.safetensors|.pth|.bin`` or a Hugging Face-style ``<name>/model.safetensors``), else the local
Hugging Face / torch-hub cache, else timm's hub download. When none of these can deliver the weights the
answer is :class:`WeightsUnavailable` (one line saying how to provide them) instead of a silent random
init. Offline (``HF_HUB_OFFLINE=1``, or no route to the hub) that error comes within seconds, from one
short probe, rather than after huggingface_hub's ~45 s of retries. :mod:`train.model` builds with these;
:mod:`train.weights` stages weights for machines without internet with the same lookup.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import nn

from train.config import ConfigError, ModelConfig

ENV_WEIGHTS = "SIGNSEARCH_WEIGHTS"
"""Environment variable naming a weights file or directory, used when ``model.weights`` is not set."""

WEIGHT_EXTENSIONS = (".safetensors", ".pth", ".bin")
HUB_DIR_FILES = ("model.safetensors", "pytorch_model.bin")
"""File names inside a Hugging Face-style ``<model_name>/`` folder, in order of preference."""

HUB_PROBE_TIMEOUT_S = 5.0
"""One HEAD request to the hub with this timeout decides whether it is reachable at all; without the
probe timm's download retries 5 times per candidate file (about 45 s offline) before failing."""

_TRUE = {"1", "on", "yes", "true"}


class WeightsUnavailable(ConfigError):
    """``pretrained: true`` but no ImageNet weights can be had; the message says how to provide them."""


# ------------------------------------------------------------------------------------- loading

def create_from_file(name: str, path: Path, kwargs: dict[str, Any], custom_load: Any = False) -> nn.Module:
    """timm's own loader reads the file (safetensors or torch pickle) and adapts the classifier."""
    import timm

    overlay = dict(file=str(path), custom_load=custom_load)
    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except Exception as error:  # corrupt file, or a checkpoint of another architecture
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConfigError(f"model.weights: {path} could not be loaded into {name} "
                          f"({type(error).__name__}: {detail})") from error


def create_from_hub(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's download, attempted only when the hub answers at all."""
    import timm

    reason = hub_unreachable_reason(name)
    if reason:
        raise unavailable(name, reason)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as error:  # network dropped, or the file vanished from the hub
        raise unavailable(name, f"hub download failed: {type(error).__name__}") from error


def unavailable(name: str, reason: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"model.weights: no ImageNet weights for {name} ({reason}); set model.weights or ${ENV_WEIGHTS} "
        f"to a .safetensors/.pth/.bin file or a directory holding {name}.safetensors (or {name}/model.safetensors), "
        f"or give this machine internet access to the Hugging Face hub")


# ------------------------------------------------------------------------------- locating weights

def explicit_weights_file(cfg: ModelConfig) -> Optional[Path]:
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
        raise unavailable(cfg.name, f"{key} path {path} does not exist")
    for candidate in _directory_candidates(path, cfg.name):
        if candidate.is_file():
            return candidate
    raise unavailable(cfg.name, f"{key} directory {path} has no {cfg.name}.safetensors|.pth|.bin "
                                 f"or {cfg.name}/{'|'.join(HUB_DIR_FILES)}")


def _directory_candidates(directory: Path, name: str) -> Iterable[Path]:
    """Files a weights directory may hold for ``name``: flat ``<stem><ext>`` first, then HF-style folders.

    Stems are the name as configured, the bare architecture and ``<architecture>.<default tag>`` (the
    folder name of a ``timm/<architecture>.<tag>`` hub snapshot), so either naming works.
    """
    architecture = name.split(".", 1)[0]
    pcfg = pretrained_cfg(name)
    tagged = [f"{architecture}.{pcfg.tag}"] if pcfg is not None and pcfg.tag else []
    stems = dict.fromkeys([name, architecture, *tagged])
    for stem in stems:
        for ext in WEIGHT_EXTENSIONS:
            yield directory / f"{stem}{ext}"
    for stem in stems:
        for filename in HUB_DIR_FILES:
            yield directory / stem / filename


def pretrained_cfg(name: str) -> Any:
    """timm's PretrainedCfg of ``name`` (the default tag when none is given)."""
    import timm

    return timm.models.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(name.split(".", 1)[0])


def _hub_files(name: str) -> tuple[Optional[str], Optional[str], list[str]]:
    """(repo id, revision, candidate file names) timm would download for ``name``; repo None if not on the hub."""
    pcfg = pretrained_cfg(name)
    if pcfg is None or not pcfg.hf_hub_id:
        return None, None, []
    repo_id, _, revision = pcfg.hf_hub_id.partition("@")
    filenames = [pcfg.hf_hub_filename] if pcfg.hf_hub_filename else list(HUB_DIR_FILES)
    return repo_id, revision or None, filenames


def hub_cached_file(name: str) -> Optional[Path]:
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
    pcfg = pretrained_cfg(name)
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


def hub_unreachable_reason(name: str) -> str:
    """Why timm's download cannot work right now, or "" when it may: one short probe, no retries."""
    if _hub_offline():
        return "HF_HUB_OFFLINE is set and the weights are not in the local cache"
    repo_id, revision, filenames = _hub_files(name)
    pcfg = pretrained_cfg(name)
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
