"""Timing an exported model in onnxruntime: the one function that measures ``latency_ms``, used by the search
(tune/latency.py, on each architecture), by model.json (the shipped point's record) and by
``results/predict.py --benchmark`` (re-measuring it on the target machine).

The session is built with the settings a server uses (artifact/runtime.py session_options, no spinning
threads); the input is random normal data of the model's input shape: a CNN's time does not depend on pixel
values. latency_ms is the median of ``repeats`` calls after ``warmup`` untimed ones (the median, not the mean:
one preempted call on a shared machine must not move it), taken in ``rounds`` rounds a moment apart, of which the
quietest counts: a burst of other work on a shared machine can slow every call of a round, and would otherwise be
recorded as the model's latency (seen on 2 shared cores: 0.26 ms recorded for a model re-measured at 0.15 ms).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
"""Execution provider setting -> onnxruntime's name for it."""


class LatencyError(ValueError):
    """A latency setting this onnxruntime cannot honour; the message is one line."""


def check_provider(provider: str) -> None:
    """Raise LatencyError unless the installed onnxruntime has ``provider`` (cpu or cuda)."""
    import onnxruntime as ort

    name = PROVIDERS.get(provider)
    available = ort.get_available_providers()
    if name not in available:
        shown = ", ".join(key for key, value in PROVIDERS.items() if value in available)
        raise LatencyError(f"latency.execution_provider: {provider!r} is not available in the installed onnxruntime "
                           f"{ort.__version__} (available: {shown}; cuda needs onnxruntime-gpu and a GPU)")


ROUND_GAP_S = 0.2
"""Pause between rounds (seconds), so that one burst of other work does not cover them all."""


def measure(onnx_path: Path, shape: tuple[int, ...], *, threads: int = 1, provider: str = "cpu", warmup: int = 10,
            repeats: int = 100, rounds: int = 3) -> dict[str, Any]:
    """Time ``onnx_path`` on a float32 input of ``shape`` (batch, 3, H, W): {latency_ms (median of the quietest
    round), p90_ms (of that round), round_medians_ms, settings}."""
    import onnxruntime as ort

    from artifact.runtime import session_options

    check_provider(provider)
    session = ort.InferenceSession(str(onnx_path), session_options(threads, spin=False),
                                   providers=[PROVIDERS[provider]])
    name = session.get_inputs()[0].name
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        session.run(None, {name: batch})
    times = np.empty((rounds, repeats))
    for r in range(rounds):
        if r:
            time.sleep(ROUND_GAP_S)
        for i in range(repeats):
            started = time.perf_counter()
            session.run(None, {name: batch})
            times[r, i] = time.perf_counter() - started
    medians = np.median(times, axis=1)
    quietest = times[int(np.argmin(medians))]
    return {"latency_ms": round(float(medians.min()) * 1000, 4),
            "p90_ms": round(float(np.percentile(quietest, 90)) * 1000, 4),
            "round_medians_ms": [round(float(m) * 1000, 4) for m in medians],
            "settings": {"batch_size": int(shape[0]), "threads": threads, "execution_provider": provider,
                         "warmup": warmup, "repeats": repeats, "rounds": rounds, "onnxruntime": ort.__version__}}
