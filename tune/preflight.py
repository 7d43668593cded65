"""What a search checks on its driver before Ray starts; every problem is one line (exit 2).

Without these checks each of them shows up only inside trials, after Ray, the Tuner and the trial
processes have started, as one traceback per trial and retry: an unknown model name, a metric the
loop never reports, a data root that does not exist, a storage or cache folder that cannot be
written, pretrained weights that cannot be had. Here they take well under a second (plus timm's
import when the search names timm models).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs

from train.config import ConfigError, TrialConfig
from train.data import DataError, check_root
from train.metrics import REPORTED_METRICS
from tune.distributions import Choice
from tune.experiment.storage import is_uri, normalise
from tune.space import SearchFile

SMALL_CNN = "small_cnn"  # train.model.SMALL_CNN, without importing torch for a small_cnn-only search


def check(search: SearchFile, source: str, storage: str) -> None:
    """Raise ConfigError / DataError naming the first problem of ``search`` (loaded from ``source``)."""
    if search.metric not in REPORTED_METRICS:
        raise ConfigError(f"{source}: metric: {search.metric!r} is not a metric the training loop reports "
                          f"(allowed: {', '.join(REPORTED_METRICS)})")
    base = search.trial_config({})
    check_models(search, base, source)
    check_latency(search, source)
    if base.data.format != "synthetic":  # a synthetic set is generated into its root on first use
        check_root(Path(base.data.root))
    check_writable_storage(storage)
    from train.data.cache import cache_root

    check_writable(cache_root(base.data), "data.cache_dir (or $SIGNSEARCH_CACHE)")


# -- models and weights -------------------------------------------------------------------------
def check_models(search: SearchFile, base: TrialConfig, source: str) -> None:
    """Every model name that can be sampled exists; weights exist wherever pretrained can be true."""
    names = _model_names(search, base)
    pretrained = {name: _pretrained_values(search, base, name) for name in names}
    if all(name == SMALL_CNN for name in names) and not any(True in v for v in pretrained.values()):
        return  # nothing to look up: no timm import
    from train.model import check_model_name, check_weights

    choices = search.space.get("model.name")
    for name in names:
        try:
            check_model_name(name)
        except ConfigError as error:
            sampled = isinstance(choices, Choice) and name in choices.values
            where = "space.model.name" if sampled else "trial.model.name"
            raise ConfigError(f"{source}: {where}{str(error).removeprefix('model.name')}") from None
        if True in pretrained[name]:
            try:
                check_weights(dataclasses.replace(base.model, name=name, pretrained=True))
            except ConfigError as error:  # WeightsUnavailable: says how to provide them
                raise type(error)(f"{source}: {error}") from None


def _model_names(search: SearchFile, base: TrialConfig) -> list[str]:
    """The base model, unless the space always overrides it, and every value a `choice` can give."""
    param = search.space.get("model.name")
    names = [] if isinstance(param, Choice) and not param.when else [base.model.name]
    if isinstance(param, Choice):
        names += [str(value) for value in param.values]
    return list(dict.fromkeys(names))


def _pretrained_values(search: SearchFile, base: TrialConfig, name: str) -> set[Any]:
    """Values model.pretrained can take together with model ``name`` (its `when` on model.name honoured;
    other conditions are taken as possibly true)."""
    param = search.space.get("model.pretrained")
    values = {base.model.pretrained}
    if isinstance(param, Choice):
        wanted = (param.when or {}).get("model.name")
        applies = wanted is None or (name in wanted if isinstance(wanted, list) else name == wanted)
        if applies:
            values = set(param.values) | (values if param.when else set())
    return values


def check_latency(search: SearchFile, source: str) -> None:
    """A latency_ms objective: onnxruntime has the execution provider, the architectures are finitely many."""
    from tune.objectives import LATENCY_METRIC

    if all(objective.metric != LATENCY_METRIC for objective in search.objective_list):
        return
    from artifact.latency import LatencyError, check_provider
    from tune.latency import architectures

    try:
        check_provider(search.latency.execution_provider)
        architectures(search)
    except (LatencyError, ConfigError) as error:
        raise ConfigError(f"{source}: {error}") from None


# -- folders ------------------------------------------------------------------------------------
def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write (then remove) a file in it; else one DataError line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".signsearch-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise DataError(f"{what}: {folder} is not a writable folder ({_reason(error)}); "
                        f"allowed: a folder this user can create files in") from None


def check_writable_storage(storage: str) -> None:
    """The search's --storage: a local folder, or a URI whose file system takes a small file."""
    location = normalise(storage)
    if not is_uri(location):
        check_writable(Path(location), "--storage")
        return
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(location)
        fs.create_dir(path, recursive=True)
        probe = posixpath.join(path, ".signsearch-probe")
        with fs.open_output_stream(probe) as stream:
            stream.write(b"probe")
        fs.delete_file(probe)
    except (OSError, pyarrow.ArrowException) as error:
        raise DataError(f"--storage: {location} is not writable ({_reason(error)}); "
                        f"allowed: a folder or URI this user can write to") from None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).splitlines()[0]

