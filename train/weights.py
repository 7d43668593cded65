"""Stage timm's ImageNet weights for clusters without internet: ``python -m train.weights fetch``.

    python -m train.weights fetch mobilenetv3_small_100 mobilenetv3_large_100 --to /mnt/shared/weights

Run it once on a machine that reaches the Hugging Face hub (or already holds the weights in its local
hub cache). Each model's weights land in ``DIR/<model_name>.safetensors``: the state dict of
``timm.create_model(name, pretrained=True)`` (1000-class ImageNet head included), exactly the layout
that ``model.weights: DIR`` or ``$SIGNSEARCH_WEIGHTS=DIR`` reads (see :func:`train.model.build_model`,
which drops the ImageNet head when a trial has another number of classes). A name with a pretrained
tag (``mobilenetv3_small_100.lamb_in1k``) is written under that name, which trials naming the bare
architecture also find when the tag is timm's default.

Every name is checked, and every hub probed, before anything is downloaded: an unknown model, a model
timm has no weights for, or an unreachable hub is one line on stderr and exit status 2, with nothing
written. Files are written under a temp name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Optional

import torch

from infra.files import new_file_mode
from train.config import ConfigError
from train.model import SMALL_CNN

# The same weight lookup and hub probe that build_model uses (one copy of that logic, in train.pretrained).
from train.pretrained import ENV_WEIGHTS, create_from_file, hub_cached_file, hub_unreachable_reason, pretrained_cfg

SUFFIX = ".safetensors"


class FetchError(ValueError):
    """A model that cannot be staged; the message is one line naming it and what to do."""


def check_fetchable(name: str) -> None:
    """Raise :class:`FetchError` unless timm knows ``name`` and lists ImageNet weights for it."""
    import timm

    if name == SMALL_CNN:
        raise FetchError(f"{name}: small_cnn has no ImageNet weights (it always starts from a random init)")
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise FetchError(f"{name}: unknown model; {hint}allowed: any name in timm.list_pretrained(), "
                         f"with or without its .tag")
    try:
        pcfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # timm's answer to a tag the architecture does not have
        architecture = name.split(".", 1)[0]
        tags = timm.list_pretrained(f"{architecture}.*")
        raise FetchError(f"{name}: unknown pretrained tag; allowed: {', '.join(tags) or 'none'}") from None
    if pcfg is None or not (pcfg.hf_hub_id or pcfg.url):
        raise FetchError(f"{name}: timm lists no pretrained weights for it")


def unavailable_reason(name: str) -> str:
    """Why the weights of ``name`` cannot be had here, or "" when the local cache or the hub has them."""
    if hub_cached_file(name) is not None:
        return ""
    return hub_unreachable_reason(name)


def load_pretrained(name: str) -> torch.nn.Module:
    """timm's ImageNet model for ``name`` (1000-class head): from the local hub cache, else downloaded."""
    import timm

    cached = hub_cached_file(name)
    if cached is not None:
        try:
            return create_from_file(name, cached, {}, custom_load=pretrained_cfg(name).custom_load)
        except ConfigError as error:  # a corrupt or truncated file in the hub cache
            raise FetchError(f"{name}: {error}") from error
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as error:  # the connection dropped mid-download, or the file vanished from the hub
        raise FetchError(f"{name}: hub download failed ({type(error).__name__}: "
                         f"{str(error).strip()[:200]})".replace("\n", " ")) from error


def write_weights(name: str, state_dict: dict[str, torch.Tensor], directory: Path,
                  source: Optional[str] = None) -> Path:
    """Write ``state_dict`` to ``directory/<name>.safetensors`` (temp file + rename); return the path.

    Tensors are moved to the CPU and made contiguous; tensors sharing storage (tied weights) are
    cloned, since safetensors refuses shared storage and timm's loader expects every key present.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in storages and tensor.numel():
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    info = {"format": "pt", "model": name, "timm": metadata.version("timm")}
    if source:
        info["source"] = source
    final = directory / f"{name}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{final.name}.", suffix=".tmp")
    os.fchmod(fd, new_file_mode())  # staged weights are for the whole cluster, not owner-only as mkstemp makes them
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=info)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def fetch(names: list[str], directory: Path) -> list[Path]:
    """Check every name and its source first, then download and write each; the written paths in order."""
    if directory.exists() and not directory.is_dir():
        raise FetchError(f"--to: {directory} exists and is not a directory")
    names = list(dict.fromkeys(names))
    for name in names:
        check_fetchable(name)
    for name in names:
        reason = unavailable_reason(name)
        if reason:
            raise FetchError(f"{name}: {reason}; run this on a machine that reaches the Hugging Face hub "
                             f"(or holds the weights in its hub cache) and copy {directory} to the cluster's "
                             "shared storage")
    written = []
    for name in names:
        model = load_pretrained(name)
        pcfg = pretrained_cfg(name)
        written.append(write_weights(name, model.state_dict(), directory, source=pcfg.hf_hub_id or pcfg.url))
        size_mb = written[-1].stat().st_size / 2**20
        print(f"{name}: {written[-1]} ({size_mb:.1f} MiB, from {pcfg.hf_hub_id or pcfg.url})", flush=True)
    return written


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.weights", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="download timm ImageNet weights into DIR/<model>.safetensors")
    fetch_cmd.add_argument("models", nargs="+", metavar="MODEL", help="timm model names, e.g. mobilenetv3_small_100")
    fetch_cmd.add_argument("--to", required=True, type=Path, metavar="DIR",
                           help="directory for the .safetensors files (created if missing), e.g. on shared storage")
    args = parser.parse_args(argv)
    directory = args.to.expanduser().absolute()
    try:
        fetch(args.models, directory)
    except FetchError as error:
        print(f"error: fetch: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # DIR not writable, disk full
        print(f"error: fetch: cannot write to {directory}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"offline trials use them with model.weights: {directory} (or ${ENV_WEIGHTS}={directory})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
