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
    """A value a config class's own check refused: ``key`` is relative to the class that checked it."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(f"{key}: got {value!r}, allowed: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`Invalid` unless ``ok`` (used in the config classes' ``__post_init__``)."""
    if not ok:
        raise Invalid(key, value, allowed)


def one_line(error: pydantic.ValidationError, root: type, at: tuple[str, ...] = ()) -> str:
    """The first problem of ``error`` (raised validating ``root``) as one line, its key as in the file.

    ``at``: where ``root`` sits in the file (e.g. ``("trial",)`` when a search file's trial section is
    validated on its own).
    """
    first = error.errors()[0]
    path, allowed = _walk(root, tuple(first["loc"]))
    key = ".".join((*at, *path))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):  # a class's own check: its key is relative to where pydantic stopped
        return f"{'.'.join((*at, *path, cause.key))}: got {cause.value!r}, allowed: {cause.allowed}"
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


def _walk(root: type, loc: tuple) -> tuple[list[str], list[str]]:
    """(the keys of ``loc`` as written in the file, the keys allowed beside the last one).

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
    return path, list(_fields(model)) if model else []


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
