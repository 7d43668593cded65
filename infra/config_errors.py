"""One line for a bad configuration: the key as it is written in the file, what is wrong, what is allowed.

Every config file of the project (a trial config, a search file, which embeds a trial config under
``trial:``) is validated by pydantic against typed classes. pydantic locates each error by the path of
keys that led to it; this module turns that path, and nothing else, into the key the user wrote, so a
trial-config key reads the same in either file (``optim.lr`` in a trial config, ``trial.optim.lr`` in a
search file) without any table that rewrites one name into another.
"""

from __future__ import annotations

import typing
from typing import Any, Optional

import pydantic


class ConfigError(ValueError):
    """A config that cannot be used; its message is one line naming the key and what is allowed."""


class Invalid(ValueError):
    """A value a config class's validator refused: ``key`` is relative to the class that checked it (a
    ``model_validator``), or empty for the field a ``field_validator`` checks."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(f"{key}: got {value!r}, allowed: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


BOUNDS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}
"""pydantic's error types of a ``Field(gt=, ge=, lt=, le=)`` bound, and the bound each one names."""
_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def one_line(error: pydantic.ValidationError, root: type, at: tuple[str, ...] = ()) -> str:
    """The first problem of ``error`` (raised validating ``root``; a missing key, then an unknown key, before any
    other) as one line, its key as in the file.

    ``at``: where ``root`` sits in the file (e.g. ``("trial",)`` when a search file's trial section is
    validated on its own).
    """
    errors = error.errors()
    first = errors[0]
    if first["type"] != "missing":  # a missing key first (a renamed one's old name is then the unknown key)
        # Then an unknown key: a misspelt key's value was never checked, and its fix is the one that matters.
        first = next((e for e in errors if e["type"] in ("extra_forbidden", "unexpected_keyword_argument")), first)
    path, allowed, field = _walk(root, tuple(first["loc"]))
    key = ".".join((*at, *path))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):  # a class's own check: its key is relative to where pydantic stopped
        where = ".".join((*at, *path, *[cause.key] * bool(cause.key)))  # no key of its own: a field validator's
        return f"{where}: got {cause.value!r}, allowed: {cause.allowed}"
    if first["type"] in BOUNDS and field is not None:  # every bound of the field, in the checks' own words
        return f"{key}: got {_as_given(first['input'], field)!r}, allowed: {_bounds(field)}"
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key '{key}'" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        tags = ", ".join(first["ctx"]["expected_tags"].replace("'", "").split(", "))
        message = f"{first['ctx']['discriminator'].strip(chr(39))} must be one of {tags}"
    if first["type"] == "missing":  # its input is the whole section: nothing worth printing
        return f"{key}: {message}"
    if first["type"] == "value_error":  # a validator's own message: it says what it got
        return f"{key}: {message}" if key else message
    return f"{key or '<top level>'}: {message} (got {first.get('input')!r})"


def _bounds(field: Any) -> str:
    """A field's ``Field`` bounds as people write them: ``>= 1``, ``> 0``, ``2..43``, ``0 <= x < 1``; or its
    ``json_schema_extra={"allowed": ...}`` where the bounds need a word of why."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    bound = {name: getattr(rule, name) for rule in field.metadata for name in _SYMBOLS
             if getattr(rule, name, None) is not None}
    if "ge" in bound and "le" in bound:
        return f"{bound['ge']:g}..{bound['le']:g}"
    lower = next(((name, bound[name]) for name in ("ge", "gt") if name in bound), None)
    upper = next(((name, bound[name]) for name in ("le", "lt") if name in bound), None)
    if lower and upper:  # 0 <= x < 1
        return f"{lower[1]:g} {_SYMBOLS[lower[0]].replace('>', '<')} x {_SYMBOLS[upper[0]]} {upper[1]:g}"
    name, value = lower or upper
    return f"{_SYMBOLS[name]} {value:g}"


def _as_given(value: Any, field: Any) -> Any:
    """The value as the field holds it (an int given for a float field is that float), as a check of the
    validated object would have printed it."""
    numeric = isinstance(value, int) and not isinstance(value, bool)
    return float(value) if numeric and float in (field.annotation, *typing.get_args(field.annotation)) else value


def _walk(root: type, loc: tuple) -> tuple[list[str], list[str], Any]:
    """(the keys of ``loc`` as written in the file, the keys allowed beside the last one, the last one's field).

    pydantic puts the tag of a discriminated union member into the location (``space.optim.lr.loguniform.low``);
    it is not a key of the file and is left out.
    """
    path: list[str] = []
    node: Any = root
    parent: Any = None
    for part in loc:
        members = _union_members(node)
        if members and part in members:
            node = members[part]  # a tag: not in the file
            continue
        path.append(str(part))
        parent, node = node, _child(node, part)
    model = _model(parent)
    fields = _fields(model) if model else {}
    return path, list(fields), fields.get(path[-1]) if path else None


def _child(node: Any, part: Any) -> Any:
    """The type of ``part`` inside ``node`` (a field of a model, a value of a dict, an item of a list)."""
    model = _model(node)
    if model is not None:
        field = _fields(model).get(part)
        return field.annotation if field is not None else None
    origin = typing.get_origin(node)
    if origin in (dict, list):
        return typing.get_args(node)[-1]
    return None


def _fields(model: type) -> dict[str, Any]:
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        return model.model_fields
    return getattr(model, "__pydantic_fields__", {})


def _model(node: Any) -> Optional[type]:
    """The config class behind ``node`` (itself, or the one class of an Optional)."""
    if isinstance(node, type) and _fields(node):
        return node
    classes = [arg for arg in typing.get_args(node) if isinstance(arg, type) and _fields(arg)]
    return classes[0] if len(classes) == 1 else None


def _union_members(node: Any) -> dict[str, type]:
    """Tag -> member class of a discriminated union (members with a Literal ``type``), else empty."""
    if typing.get_origin(node) is typing.Annotated:
        node = typing.get_args(node)[0]
    members = {}
    for arg in typing.get_args(node):
        tag = _fields(arg).get("type") if isinstance(arg, type) else None
        if tag is not None and typing.get_origin(tag.annotation) is typing.Literal:
            members.update({value: arg for value in typing.get_args(tag.annotation)})
    return members
