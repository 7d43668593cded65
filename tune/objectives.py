"""The objectives of a multi-objective search (``objectives:`` in the search file) and how latency is measured.

A search file either names one ``metric``/``mode`` (the single-objective form, unchanged) or a list of
``objectives``, e.g. ``[{metric: val_acc, mode: max}, {metric: latency_ms, mode: min}]``. ``latency_ms`` is not
reported by the training loop: it is measured on the trial's architecture exported to ONNX and timed in
onnxruntime with the ``latency:`` settings (tune/latency.py). ASHA and the progress display use the first
objective that the loop reports (an accuracy-like one): latency is known before the first epoch, so it says
nothing about how a trial is learning.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)

LATENCY_METRIC = "latency_ms"
"""The measured objective: median milliseconds of one onnxruntime call on a batch of ``latency.batch_size``."""


def direction(mode: str) -> str:
    """A mode (max/min) as Optuna and W&B Sweeps name it (a study's direction, a sweep metric's goal)."""
    return "maximize" if mode == "max" else "minimize"


class Objective(BaseModel):
    """One objective of a multi-objective search."""

    model_config = _STRICT
    metric: str
    """A metric the training loop reports (train/metrics.py: val_acc, val_loss, ...) or latency_ms (measured)."""
    mode: Literal["max", "min"]
    """max: higher is better (val_acc); min: lower is better (latency_ms, val_loss)."""


class Latency(BaseModel):
    """How ``latency_ms`` is measured: the settings the model will be served with."""

    model_config = _STRICT
    batch_size: int = Field(1, ge=1)
    """Images per onnxruntime call (1: one request at a time, as results/serve.py answers them)."""
    threads: int = Field(1, ge=0)
    """onnxruntime intra-op threads; 0 lets onnxruntime use every core. 1 by default: measurements are
    repeatable on a shared machine, and a server answering requests in parallel gives each one core."""
    execution_provider: Literal["cpu", "cuda"] = "cpu"
    """onnxruntime execution provider; cuda needs onnxruntime-gpu and a GPU where the search's driver runs."""
    warmup: int = Field(10, ge=0)
    """Untimed calls first (allocations, caches)."""
    repeats: int = Field(100, ge=5)
    """Timed calls per round; latency_ms is their median, in the round where it is lowest."""
    rounds: int = Field(3, ge=1)
    """Rounds of ``repeats`` calls, 0.2 s apart; the quietest counts (a burst of other work on a shared machine
    slows a whole round)."""


def check_objectives(objectives: list[Objective], allowed: tuple[str, ...]) -> None:
    """Raise ValueError (one line) for an unknown metric, latency_ms maximised, a metric named twice, or no trained
    metric."""
    names = [objective.metric for objective in objectives]
    for name in names:
        if name not in (*allowed, LATENCY_METRIC):
            raise ValueError(f"objectives: unknown metric {name!r} (allowed: {', '.join(allowed)}, {LATENCY_METRIC})")
    for objective in objectives:
        if objective.metric == LATENCY_METRIC and objective.mode != "min":
            raise ValueError(f"objectives: {LATENCY_METRIC} is minimised (a faster model is better): give it mode: "
                             f"min, got mode: {objective.mode}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"objectives: {', '.join(twice)} named twice; each metric can be one objective only")
    if all(name == LATENCY_METRIC for name in names):
        raise ValueError(f"objectives: needs a metric the training loop reports (allowed: {', '.join(allowed)}) "
                         f"besides {LATENCY_METRIC}: ASHA stops trials on it")


def scheduled(objectives: list[Objective]) -> Objective:
    """The objective ASHA (and the progress display) uses: the first one the training loop reports."""
    return next(objective for objective in objectives if objective.metric != LATENCY_METRIC)
