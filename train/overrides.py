"""YAML files and ``--set dotted.key=value`` overrides, turned into one nested dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from train.config import ConfigError


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file or bad YAML is one ConfigError line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """``config["a"]["b"] = value`` for key "a.b", creating sections on the way."""
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{part}' holds a value, not a section")
        node = child
    node[leaf] = value


def apply_overrides(config: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Set each ``dotted.key=value`` (value parsed as YAML: 3e-4, true, [a, b]) in a nested dict."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected dotted.key=value, e.g. optim.lr=3e-4")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {assignment!r}: the value is not valid YAML (quote strings with spaces)") from None
        try:
            set_dotted(config, key, value)
        except ConfigError as error:
            raise ConfigError(f"--set {assignment!r}: {error}") from None
    return config
