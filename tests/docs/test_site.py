"""The documentation site (mkdocs.yml, docs/): it builds with --strict, and its reference, generated from the code,
lists every key of the shipped default search file and has a docstring for every config key."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _reference():
    spec = importlib.util.spec_from_file_location("docs_reference", REPO / "docs" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _reference()


def test_every_config_key_has_a_docstring():
    """A key without a field docstring would have an empty line in the reference: its docstring is the docs."""
    missing = [f"search file: {key.path}" for key in reference.search_file_keys() if not key.doc]
    missing += [f"trial config: {key.path}" for key in reference.trial_config_keys() if not key.doc]
    assert not missing, "add an attribute docstring under each of: " + ", ".join(missing)


def _flatten(mapping: dict, prefix: str = "") -> list[str]:
    """Dotted key paths of a YAML mapping, down to the leaves (a list is a leaf)."""
    out = []
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(value, dict):
            out += _flatten(value, f"{path}.")
    return out


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page.read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_reference_lists_every_key_of_the_default_search_file(site):
    smoke = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    search_file = _anchors(site / "reference" / "search-file.html")
    trial_config = _anchors(site / "reference" / "trial-config.html")
    missing = []
    for path in _flatten({k: v for k, v in smoke.items() if k != "space"}):
        if path != "trial" and path.startswith("trial."):
            missing += [] if path in trial_config else [path]
        elif path not in search_file:
            missing.append(path)
    for name, param in smoke["space"].items():  # a parameter's name is a trial key; its fields are space.PARAM.*
        missing += [] if f"trial.{name}" in trial_config else [f"trial.{name} (space.{name})"]
        missing += [f"space.{name}.{field}" for field in param if f"space.PARAM.{field}" not in search_file]
    assert not missing, missing


@pytest.mark.slow
def test_the_reference_has_every_commands_help_and_every_experiment_file(site):
    from results.cli import COMMANDS

    commands = (site / "reference" / "commands.html").read_text()
    for name in COMMANDS:
        assert f"usage: signsearch {name}" in commands or name == "sweep", name
    assert "usage: python -m tune.sweep" in commands
    folder = (site / "reference" / "experiment-folder.html").read_text()
    for constant, value, _ in reference.layout_names():
        assert constant in folder and str(value) in folder, constant
