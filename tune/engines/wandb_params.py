"""One space parameter <-> one W&B Sweeps parameter, and ``when`` conditions, shared by the export, the agent's
trial and the in-Ray engine so all three read a sweep's values the same way.

W&B Sweeps have no conditional parameters. A parameter with ``when`` is therefore swept unconditionally, and
:func:`active` drops it from a trial whose condition does not hold, exactly as the Optuna searcher never samples
it there (tune.distributions.define_by_run): the trial trains the same config either way, and the sweep's value for
it is kept in the W&B run's config but has no effect.
"""

from __future__ import annotations

import math
from typing import Any

from tune.distributions import Choice, LogUniform, Param, QUniform, RandInt, Uniform, condition_holds


def sweep_parameter(param: Param, grid: bool = False) -> dict[str, Any]:
    """The W&B parameter for ``param``; ``grid``: as a finite list of values (None: it has none)."""
    if grid:
        values = grid_values(param)
        return {"values": values} if values is not None else {}
    if isinstance(param, Choice):
        return {"values": list(param.values)}
    if isinstance(param, RandInt):
        return {"distribution": "int_uniform", "min": param.low, "max": param.high - 1}  # W&B's max is inclusive
    if isinstance(param, QUniform):
        return {"distribution": "q_uniform", "min": param.low, "max": param.high, "q": param.q}
    if isinstance(param, LogUniform):
        return {"distribution": "log_uniform_values", "min": param.low, "max": param.high}
    if isinstance(param, Uniform):
        return {"distribution": "uniform", "min": param.low, "max": param.high}
    raise TypeError(f"no W&B parameter for {type(param).__name__}")


def grid_values(param: Param) -> list[Any] | None:
    """Every value of a finite parameter (choice, randint, quniform), for method grid; None for a continuous one."""
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, RandInt):
        return list(range(param.low, param.high))
    if isinstance(param, QUniform):
        steps = int(math.floor((param.high - param.low) / param.q + 1e-9))
        return [round(param.low + i * param.q, 10) for i in range(steps + 1)]
    return None


def snap(param: Param, value: Any) -> Any:
    """``value`` as the space's own distribution holds it: a plain Python value (the sweeps engine hands numpy
    scalars), on the quniform grid (W&B rounds to multiples of q, float noise included), inside the bounds."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(param, Choice):
        return value
    if isinstance(param, RandInt):
        return min(max(int(round(float(value))), param.low), param.high - 1)
    value = min(max(float(value), param.low), param.high)
    if isinstance(param, QUniform):
        steps = round((value - param.low) / param.q)
        value = min(round(param.low + steps * param.q, 10), param.high)
    return value


def active(values: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """The values of ``space``'s parameters a trial uses: in space order, a parameter whose ``when`` does not hold
    (against the values kept before it) is dropped, as tune.distributions.define_by_run never samples it."""
    out: dict[str, Any] = {}
    for key, param in space.items():
        if key not in values:
            continue
        if not condition_holds(param, out):
            continue
        out[key] = snap(param, values[key])
    return out


def conditions(space: dict[str, Param]) -> list[str]:
    """One line per conditional parameter: its key and its condition (for the exported config's description)."""
    lines = []
    for key, param in space.items():
        if param.when:
            cond = " and ".join(f"{other} in {want}" if isinstance(want, list) else f"{other} == {want}"
                                for other, want in param.when.items())
            lines.append(f"{key} only when {cond}")
    return lines
