"""YAML files and ``--set dotted.key=value`` overrides, turned into one nested dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from infra.config_errors import ConfigError


class DuplicateKey(yaml.YAMLError):
    """A mapping that names one key twice; its message is one line naming the key and both lines."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping. PyYAML (like the YAML 1.1 it
    implements) silently keeps the last value, so ``num_samples`` written twice under ``budget:`` would run
    a search nobody asked for; YAML 1.2 says keys must be unique."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" merges; it may repeat
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if first != line:
                raise DuplicateKey(f"key {key!r} appears twice in one mapping (lines {first} and {line}): keep one")
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (:class:`DuplicateKey`, a ``yaml.YAMLError``): every YAML
    file the project reads goes through here."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, bad YAML or a duplicate key is one ConfigError line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        loaded = safe_load(path.read_text())
    except DuplicateKey as error:
        raise ConfigError(f"{path}: {error}") from None
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


def set_in_flat(section: dict[str, Any], name: str, rest: str, value: Any, example: str) -> None:
    """Set ``rest`` in ``section``, a section whose keys are dotted paths themselves (a search file's ``space``:
    ``optim.lr``): ``rest`` is the longest key it equals or starts with, then a path inside that entry
    (``optim.lr.high``). A ``rest`` naming no key adds one, given whole (a mapping: ``example``)."""
    known = [key for key in section if rest == key or rest.startswith(f"{key}.")]
    if known:
        key = max(known, key=len)
        inner = rest[len(key) + 1:]
        if not inner:
            section[key] = value
        elif isinstance(section[key], dict):
            set_dotted(section[key], inner, value)
        else:
            raise ConfigError(f"'{name}.{key}' holds a value, not a section")
    elif isinstance(value, dict):
        section[rest] = value
    else:
        raise ConfigError(f"{name} has no entry {rest!r} nor one it starts with (entries: "
                          f"{', '.join(section) or 'none'}); a new entry is given whole, e.g. --set {example}")


def apply_overrides(config: dict[str, Any], assignments: Iterable[str],
                    flat: dict[str, str] | None = None) -> dict[str, Any]:
    """Set each ``dotted.key=value`` (value parsed as YAML: 3e-4, true, [a, b]) in a nested dict.

    ``flat``: top-level sections whose keys are dotted paths (:func:`set_in_flat`), each with an example of a
    whole new entry for the error line."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected dotted.key=value, e.g. optim.lr=3e-4")
        try:
            value = safe_load(text) if text else None
        except DuplicateKey as error:
            raise ConfigError(f"--set {assignment!r}: {error}") from None
        except yaml.YAMLError:
            raise ConfigError(f"--set {assignment!r}: the value is not valid YAML "
                              "(quote strings with spaces)") from None
        name, dot, rest = key.partition(".")
        try:
            if dot and rest and name in (flat or {}):
                section = config.setdefault(name, {})
                if not isinstance(section, dict):
                    raise ConfigError(f"'{name}' holds a value, not a section")
                set_in_flat(section, name, rest, value, (flat or {})[name])
            else:
                set_dotted(config, key, value)
        except ConfigError as error:
            raise ConfigError(f"--set {assignment!r}: {error}") from None
    return config
