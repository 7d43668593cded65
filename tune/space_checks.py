"""Checks across a loaded search file that one field's validator cannot make: a key both fixed and searched, every
parameter's extreme values as a trial config, ``when`` conditions that look back, warm-start points."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.config import ConfigError
from tune.distributions import MISSING, Choice, Param, RandInt

if TYPE_CHECKING:
    from tune.space import SearchFile


def check_searched_not_fixed(path: str | Path, search: SearchFile, trial: Any) -> None:
    """A key both fixed in ``trial`` (as written: ``trial``, the file's raw section) and sampled by the space
    would be silently overridden by every sample: refuse it."""
    for key in search.space if isinstance(trial, dict) else ():
        node: Any = trial
        for part in str(key).split("."):
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
        if node is not MISSING:
            raise ConfigError(f"{path}: trial.{key} is fixed ({node!r}) and searched by space.{key}: "
                              f"remove it from one of the two (from trial to search it, from space to fix it)")


def check_space(path: str | Path, search: SearchFile) -> None:
    """Each parameter's extreme values must make a valid trial config; `when` must look back."""
    seen: list[str] = []
    for key, param in search.space.items():
        for other in (param.when or {}):
            if other not in seen:
                raise ConfigError(f"{path}: space.{key}.when: '{other}' must be a parameter listed earlier in space "
                                  f"(earlier: {', '.join(seen) or 'none'})")
        for value in _extremes(param):
            try:
                search.trial_config({**_defaults_for_when(search.space, param), key: value})
            except ConfigError as error:
                raise ConfigError(f"{path}: space.{key}: value {value!r} is not a valid config: "
                                  f"{str(error).removeprefix('space: ')}") from None
        seen.append(key)
    for i, point in enumerate(search.searcher.warm_start):
        unknown = sorted(set(point) - set(search.space))
        if unknown:
            raise ConfigError(f"{path}: searcher.warm_start[{i}]: unknown parameter(s) {', '.join(unknown)} "
                              f"(allowed: {', '.join(search.space)})")


def _extremes(param: Any) -> list[Any]:
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, RandInt):
        return [param.low, param.high - 1]
    return [param.low, param.high]


def _defaults_for_when(space: dict[str, Param], param: Any) -> dict[str, Any]:
    """Values that make ``param``'s condition hold, so it is checked in the context it is used in."""
    out = {}
    for other, want in (param.when or {}).items():
        out[other] = want[0] if isinstance(want, list) else want
    return out
