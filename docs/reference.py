"""The reference pages, generated from the code while the site builds (docs/hooks.py): never written twice.

- every key of a search file (tune/space.py SearchFile) and of a trial config (train/config.py TrialConfig): its
  type, default, allowed values (Literal values and Field bounds, as the one-line config errors say them) and
  the field's docstring (pydantic's ``use_attribute_docstrings`` makes it the field's description);
- every command's ``--help``, captured from its parser (results/cli.py COMMANDS and the module CLIs);
- the experiment folder's files (tune/experiment/layout.py: its docstring and its names).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import io
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `mkdocs build` from a checkout that was never installed
    sys.path.insert(0, str(REPO))

from infra.config_errors import _bounds  # noqa: E402 - the allowed values as the config error lines say them
from results.cli import COMMANDS  # noqa: E402
from train.config import TrialConfig  # noqa: E402
from tune.distributions import Param  # noqa: E402
from tune.space import SearchFile  # noqa: E402

PARAM = "PARAM"
"""Stands for a parameter's name (its dotted path in ``trial``) in the space's key paths: space.PARAM.low."""

# Module CLIs that have no `signsearch` subcommand: (how it is run, module, argv that prints its help).
MODULE_CLIS = [
    ("python -m train.weights", "train.weights", ["fetch", "--help"]),
    ("python -m train.data.synthetic", "train.data.synthetic", ["--help"]),
    ("python -m results.serving.plain", "results.serving.plain", ["--help"]),
]


class Key(NamedTuple):
    path: str
    """Dotted path as written in the file (PARAM for a space parameter's name)."""
    type: str
    default: str
    allowed: str
    doc: str
    section: bool
    """A mapping of further keys (documented in their own table)."""


def fields(model: Any) -> dict[str, Any]:
    if isinstance(model, type) and hasattr(model, "model_fields"):
        return dict(model.model_fields)
    return dict(getattr(model, "__pydantic_fields__", {}))


def _config_class(annotation: Any) -> Any:
    """The config class behind a field's annotation (itself or the one class of an Optional), else None."""
    candidates = [annotation, *typing.get_args(annotation)]
    classes = [c for c in candidates if isinstance(c, type) and fields(c)]
    return classes[0] if len(classes) == 1 else None


def type_name(annotation: Any) -> str:
    """A field's type as a user of the YAML file reads it."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return "string" if all(isinstance(a, str) for a in typing.get_args(annotation)) else "value"
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) > 2 and all(fields(a) for a in args if a is not type(None)):
            return "parameter"
        names = dict.fromkeys(type_name(a) for a in args)
        return " or ".join(names)
    if origin is list:
        item = typing.get_args(annotation)[0]
        return "list of mappings" if fields(item) else f"list of {type_name(item)}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and fields(annotation):
        return "section"
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(annotation, getattr(annotation, "__name__",
                                                                                             str(annotation)))


def _literals(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    values = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            values += typing.get_args(arg)
    return values


def allowed(info: Any) -> str:
    """Allowed values: the Literal's values, the Field's bounds (as the error lines say them), its pattern."""
    parts = []
    literals = _literals(info.annotation)
    if literals:
        parts.append(", ".join(f"`{_yaml(v)}`" for v in literals))
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra or any(getattr(rule, name, None) is not None for rule in info.metadata
                                 for name in ("ge", "gt", "le", "lt")):
        parts.append(_bounds(info))
    for rule in info.metadata:
        if getattr(rule, "pattern", None):
            parts.append(f"matches `{rule.pattern}`")
        if getattr(rule, "min_length", None):
            parts.append(f"at least {rule.min_length} item(s)")
    return "; ".join(parts)


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if dataclasses.is_dataclass(value) or fields(type(value)):
        return ""  # a section: each of its keys has its own default
    return f"`{_yaml(value)}`"


def _markdown(text: str) -> str:
    """reST's ``literal`` as Markdown's `literal`."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def doc(info: Any) -> str:
    return _markdown(" ".join((info.description or "").split()))


def keys(model: Any, prefix: str = "") -> Iterator[Key]:
    """Every key of ``model`` and of its sections, depth first, with a space's parameters as space.PARAM.*."""
    for name, info in fields(model).items():
        path = f"{prefix}{name}"
        nested = _config_class(info.annotation)
        is_space = typing.get_origin(info.annotation) is dict and model is SearchFile and name == "space"
        yield Key(path, type_name(info.annotation), default(info), allowed(info), doc(info),
                  nested is not None or is_space)
        if nested is TrialConfig:
            continue  # the trial config has its own page
        if nested is not None:
            yield from keys(nested, f"{path}.")
        elif is_space:
            yield from param_keys(f"{path}.{PARAM}.")
        elif _list_item(info.annotation) is not None:
            yield from keys(_list_item(info.annotation), f"{path}[].")


def _list_item(annotation: Any) -> Any:
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is list:
            item = typing.get_args(candidate)[0]
            return item if fields(item) else None
    return None


def param_keys(prefix: str) -> Iterator[Key]:
    """A space parameter's keys, merged over the distributions (type, low, high, q, values, when)."""
    members = typing.get_args(typing.get_args(Param)[0])
    seen: dict[str, list[Any]] = {}
    for member in members:
        for name, info in fields(member).items():
            seen.setdefault(name, []).append((member, info))
    for name in sorted(seen, key=lambda name: (name != "type", name == "when")):  # type first, when last
        found = seen[name]
        if name == "type":
            values = [typing.get_args(info.annotation)[0] for _, info in found]
            text = " ".join(f"`{v}`: {doc(info)}" for v, (_, info) in zip(values, found))
            yield Key(f"{prefix}type", "string", "required", ", ".join(f"`{v}`" for v in values), text, False)
            continue
        types_ = [typing.get_args(m.model_fields["type"].annotation)[0] for m, _ in found]
        member, info = found[0]
        notes = dict.fromkeys(doc(i) for _, i in found)
        used = "" if len(types_) == len(members) else f" ({', '.join(types_)})"
        kinds = " or ".join(dict.fromkeys(type_name(i.annotation) for _, i in found))
        yield Key(f"{prefix}{name}", kinds + used, default(info), allowed(info),
                  " ".join(notes), False)


def search_file_keys() -> list[Key]:
    return list(keys(SearchFile))


def trial_config_keys() -> list[Key]:
    return list(keys(TrialConfig))


def _cell(text: str) -> str:
    """Text for a table cell: a | would end the cell, and a <name> outside `code` would be taken for HTML."""
    parts = re.split(r"(`[^`]*`)", text)
    parts = [p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts]
    return "".join(parts).replace("|", "\\|")


def table(rows: list[Key], page_prefix: str = "") -> str:
    """One table per section, top level first: key (with its anchor), type and allowed values, default, what."""
    sections: dict[str, list[Key]] = {"": []}
    for key in rows:
        sections.setdefault(key.path.rpartition(".")[0], []).append(key)
    out: list[str] = []
    for parent, keys_ in sections.items():
        title = f"`{page_prefix}{parent}`" if parent else "Top level"
        out += ["", f"## {title} {{ #{section_id(page_prefix + parent)} }}", "",
                '<div class="config-keys" markdown>', "",
                "| key | type, allowed | default | what |", "| --- | --- | --- | --- |"]
        for key in keys_:
            name = key.path.rpartition(".")[2]
            kind = key.type + (f": {key.allowed}" if key.allowed else "")
            what = key.doc
            target = next((t for t in (key.path, f"{key.path}.{PARAM}", f"{key.path}[]") if t in sections), None)
            if target:
                what += f" [Its keys ↓](#{section_id(page_prefix + target)})"
            elif key.section:  # a whole trial config: its keys have their own page
                what += " [Its keys](trial-config.md)"
            out.append(f'| <span id="{page_prefix}{key.path}"></span>`{name}` | {_cell(kind)} | {_cell(key.default)} '
                       f"| {_cell(what)} |")
        out += ["", "</div>"]
    return "\n".join(out) + "\n"


def section_id(path: str) -> str:
    """The heading anchor of a section's table (a key's own anchor is its dotted path)."""
    return f"section-{path}" if path else "top-level"


def search_file_page() -> str:
    return ("# Search file\n\n"
            "Every key of a search file (`search_spaces/*.yaml`), generated from `tune/space.py` while the site "
            "builds. `trial:` is a whole [trial config](trial-config.md); a space parameter's name is its dotted "
            f"path in it (`{PARAM}` below, e.g. `optim.lr`). `--set KEY=VALUE` takes these paths. A key not listed "
            "here, a wrong type or a value outside what is allowed stops the search before Ray starts, with one "
            "line naming the key.\n" + table(search_file_keys()))


def trial_config_page() -> str:
    return ("# Trial config\n\n"
            "Every key of a trial config: the `trial:` section of a search file, `best_config.yaml`, and what "
            "`signsearch train --config` reads; generated from `train/config.py` while the site builds. In a "
            "search file the same keys sit under `trial.` (`--set trial.optim.lr=3e-3`).\n"
            + table(trial_config_keys(), "trial."))


def capture(main: Callable[[list[str]], Any], argv: list[str], prog: str) -> str:
    """What ``main(argv)`` prints for --help, with the program named as a user types it."""
    out = io.StringIO()
    saved, columns = sys.argv[0], os.environ.get("COLUMNS")
    sys.argv[0] = prog
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal: the same page from every terminal
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        sys.argv[0] = saved
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().rstrip()


def cli_page() -> str:
    from results.cli import main as signsearch

    parts = ["# Commands\n",
             "Every command's `--help`, captured from its parser while the site builds. `signsearch COMMAND` is "
             "the same CLI as its script: `signsearch search` is `python tune/run_search.py`, `signsearch sweep` "
             "is `python -m tune.sweep`.\n",
             "## signsearch\n", "```text", capture(signsearch, ["--help"], "signsearch"), "```\n"]
    for name, command in COMMANDS.items():
        main = importlib.import_module(command.module).main
        parts += [f"## signsearch {name}\n", f"Also `{command.script}`.\n", "```text",
                  capture(main, ["--help"], f"signsearch {name}"), "```\n"]
    for how, module, argv in MODULE_CLIS:
        main = importlib.import_module(module).main
        parts += [f"## {how}\n", "```text", capture(main, argv, how), "```\n"]
    return "\n".join(parts)


def layout_names() -> list[tuple[str, str, str]]:
    """(constant, its value, its docstring) of tune/experiment/layout.py, in file order."""
    tree = ast.parse((REPO / "tune" / "experiment" / "layout.py").read_text())
    rows: list[tuple[str, str, str]] = []
    body = tree.body
    for index, node in enumerate(body):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            following = body[index + 1] if index + 1 < len(body) else None
            text = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                text = " ".join(str(following.value.value).split())
            rows += [(target.id, node.value.value, text) for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            rows.append((f"{node.name}()", "", " ".join((ast.get_docstring(node) or "").split())))
    return rows


def experiment_folder_page() -> str:
    from tune.experiment import layout

    docstring = layout.__doc__ or ""
    title, _, rest = docstring.partition("\n")
    listing = rest.split("::", 1)[1] if "::" in rest else rest
    lines = ["# Experiment folder\n",
             f"{_markdown(title.strip())} Generated from `tune/experiment/layout.py` while the "
             "site builds; `tune/experiment/records.py` holds the schema of `summary.json`, `run.json` and "
             "`search.yaml`.\n", "| file | what |", "| --- | --- |"]
    for line in _dedent(listing).splitlines():  # "name   what   when", columns two or more spaces apart
        name, *what = re.split(r"\s{2,}", line.strip())
        lines.append(f"| `{name}` | {_cell('; '.join(what))} |")
    lines += ["", "## Names in the code\n", '<div class="names" markdown>', "",
              "| name | value | what |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {f'`{value}`' if value else ''} | {_cell(_markdown(text))} |"
              for name, value, text in layout_names()]
    lines += ["", "</div>"]
    from tune.experiment.records import RunRecord, Summary

    for title, model in (("summary.json", Summary), ("run.json", RunRecord)):
        about = _markdown(" ".join((model.__doc__ or "").split()))
        lines += ["", f"## {title} {{ #{title.replace('.', '-')} }}", "", about,
                  table(list(keys(model)), f"{title}:").replace("\n## ", "\n### ")]
    return "\n".join(lines) + "\n"


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text.strip("\n")).rstrip()


PAGES: dict[str, Callable[[], str]] = {
    "reference/search-file.md": search_file_page,
    "reference/trial-config.md": trial_config_page,
    "reference/commands.md": cli_page,
    "reference/experiment-folder.md": experiment_folder_page,
}
