"""The ``signsearch`` command (results/cli.py): each subcommand is its script's CLI, the help fits a screen, and
``signsearch --help`` loads neither torch nor Ray."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from results.cli import COMMANDS, main
from tests.helpers.cli import run_main

REPO = Path(__file__).resolve().parents[2]


def test_the_console_script_names_this_main():
    # pyproject.toml's [project.scripts] line (tomllib is Python 3.11+; the project runs on 3.10)
    target = re.search(r'^signsearch = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_help_lists_every_command_and_fits_a_screen(capsys):
    result = run_main(main, ["--help"], capsys)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 80, result.stdout
    for name in COMMANDS:
        assert any(line.split()[:1] == [name] for line in lines), name


def test_no_command_is_the_usage_and_exit_2(capsys):
    result = run_main(main, [], capsys)
    assert result.returncode == 2 and result.stderr.startswith("usage: signsearch")


def test_version_is_the_installed_package_version(capsys):
    result = run_main(main, ["--version"], capsys)
    assert result.returncode == 0 and result.stdout == f"signsearch {version('signsearch')}\n"


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    result = run_main(main, ["serach", "--config", "x.yaml"], capsys)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unknown command 'serach'" in result.stderr, result.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_is_its_scripts_cli(name, capsys):
    ours = run_main(main, [name, "--help"], capsys)
    script = run_main(importlib.import_module(COMMANDS[name].module).main, ["--help"], capsys)
    assert ours.returncode == script.returncode == 0
    # The same parser: past the usage lines (which name the program), the same help word for word.
    assert ours.stdout.split("\n\n", 1)[1] == script.stdout.split("\n\n", 1)[1]
    if name != "sweep":
        assert ours.stdout.startswith(f"usage: signsearch {name} ")


def test_bad_input_is_the_scripts_one_line_and_exit_2(capsys):
    result = run_main(main, ["search", "--config", "/nonexistent/space.yaml"], capsys)
    assert result.returncode == 2
    assert result.stderr == "error: /nonexistent/space.yaml: no such config file\n"


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys; from results.cli import main; main(['--help']); "
            "assert not {'torch', 'ray'} & set(sys.modules), sorted({'torch', 'ray'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=60)
