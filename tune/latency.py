"""``latency_ms`` of a multi-objective search: every architecture the space can produce, exported to ONNX and
timed in onnxruntime once, by the driver, before the trials start.

Latency depends on the architecture, not the weights: the key is (model name, small_cnn's knobs, input size,
class count). Each one is built with random weights (the training builder, train/model.py, with timm's
exportable layers), exported by the same function results/export.py uses (artifact/convert.py
export_onnx) and timed by artifact/latency.py measure with the search file's ``latency:`` settings.

Why in the driver, not lazily in the trials: the space's architectures are a finite product of choices (a
continuous architecture parameter is refused), measuring them one after the other on an idle machine gives
numbers trials training beside each other would not, and every trial then just looks its value up. The
table is kept in ``<experiment>/latency.json``: a resumed search reuses it (same numbers, so the same front)
and measures only what is missing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any, Optional

from train.config import ConfigError, TrialConfig
from tune.distributions import Choice, RandInt
from tune.experiment.layout import LATENCY_FILE
from tune.objectives import LATENCY_METRIC
from tune.space import SearchFile

ARCHITECTURE_PREFIXES = ("model.name", "model.cnn.", "data.image_size")
"""Space keys that change the network or its input (model.pretrained, drop_rate and training knobs do not)."""


def architecture_key(cfg: TrialConfig, num_classes: int) -> str:
    """The latency table's key of a trial config: what the exported graph depends on."""
    from train.model import SMALL_CNN

    cnn = dataclasses.asdict(cfg.model.cnn) if cfg.model.name == SMALL_CNN else None
    if cnn is not None:
        cnn.pop("dropout")  # identity at inference
    return json.dumps({"model": cfg.model.name, "cnn": cnn, "image_size": cfg.data.image_size,
                       "classes": num_classes}, sort_keys=True)


def architectures(search: SearchFile) -> list[TrialConfig]:
    """One trial config per architecture the space can produce (every combination of the architecture
    parameters' values; ``when`` conditions are ignored, which adds only duplicates: a small_cnn knob sampled
    with a timm model leaves the key as it is). ConfigError for a continuous architecture parameter."""
    axes: dict[str, list[Any]] = {}
    for key, param in search.space.items():
        if not any(key == prefix or key.startswith(prefix) for prefix in ARCHITECTURE_PREFIXES):
            continue
        if isinstance(param, Choice):
            axes[key] = list(param.values)
        elif isinstance(param, RandInt):
            axes[key] = list(range(param.low, param.high))
        else:
            raise ConfigError(f"space.{key}: {LATENCY_METRIC} is measured once per architecture before the trials "
                              f"start, so an architecture parameter must be a choice or randint (got {param.type})")
    configs = []
    for values in itertools.product(*axes.values()):
        try:
            configs.append(search.trial_config(dict(zip(axes, values))))
        except ConfigError:
            continue  # a combination `when` never samples together
    return configs


class LatencyTable:
    """Architecture key -> measured latency (ms); what each trial reads its latency_ms from (it pickles)."""

    def __init__(self, num_classes: int, entries: dict[str, dict[str, Any]]):
        self.num_classes = num_classes
        self.entries = entries

    def latency_ms(self, cfg: TrialConfig) -> Optional[float]:
        entry = self.entries.get(architecture_key(cfg, self.num_classes))
        return None if entry is None else entry[LATENCY_METRIC]

    def settings(self) -> Optional[dict[str, Any]]:
        """The measurement settings (the same for every entry)."""
        return next((entry["settings"] for entry in self.entries.values()), None)


def measure_architecture(cfg: TrialConfig, num_classes: int, settings) -> dict[str, Any]:
    """Export ``cfg``'s network (random weights) to ONNX and time it; {latency_ms, p90_ms, settings}."""
    import torch

    from artifact.convert import export_onnx
    from artifact.latency import measure
    from train.model import build_exportable

    model = build_exportable(dataclasses.replace(cfg.model, pretrained=False), num_classes)
    size = cfg.data.image_size
    with tempfile.TemporaryDirectory(prefix="signsearch-latency-") as folder:
        path = Path(folder) / "model.onnx"
        # Batch 2 for the export, as results/export.py: the batch axis stays dynamic either way.
        export_onnx(model, torch.zeros(2, 3, size, size), path)
        return measure(path, (settings.batch_size, 3, size, size), threads=settings.threads,
                       provider=settings.execution_provider, warmup=settings.warmup, repeats=settings.repeats,
                       rounds=settings.rounds)


def measure_search(search: SearchFile, experiment, num_classes: int) -> LatencyTable:
    """The latency of every architecture of ``search``, from ``experiment``'s latency.json where measured
    before with the same settings, else measured now (and written back whole after each measurement)."""
    wanted = search.latency.model_dump()
    entries: dict[str, dict[str, Any]] = {}
    if experiment.has(LATENCY_FILE):
        kept = json.loads(experiment.read_text(LATENCY_FILE))
        entries = {key: entry for key, entry in kept.items()
                   if {k: entry["settings"].get(k) for k in wanted} == wanted}
    configs = {architecture_key(cfg, num_classes): cfg for cfg in architectures(search)}
    for key, cfg in configs.items():
        if key in entries:
            continue
        entries[key] = {**json.loads(key), **measure_architecture(cfg, num_classes, search.latency)}
        experiment.write_text(LATENCY_FILE, json.dumps(entries, indent=1))
        cnn = f" (width {cfg.model.cnn.width}, {cfg.model.cnn.blocks} blocks)" if entries[key]["cnn"] else ""
        print(f"latency: {cfg.model.name}{cnn} at {cfg.data.image_size} px: {entries[key][LATENCY_METRIC]:.3f} ms "
              f"(median of {search.latency.repeats}, quietest of {search.latency.rounds} rounds, "
              f"batch {search.latency.batch_size}, "
              f"{search.latency.threads} thread(s), {search.latency.execution_provider})", flush=True)
    return LatencyTable(num_classes, {key: entries[key] for key in configs})
