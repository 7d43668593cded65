"""README.md and the documentation pages: every shell block marked runnable (``<!-- runnable -->`` on the line
before its fence) runs as written, from the repository root, and every YAML block so marked is a valid search file;
README.md fits a screen or two."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARK = "<!-- runnable -->"
BLOCK = re.compile(re.escape(MARK) + r"\n```(bash|yaml)\n(.*?)\n```", re.S)


def runnable_blocks(language: str = "bash") -> list[tuple[str, str]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    blocks = []
    for page in pages:
        text = page.read_text()
        found = BLOCK.findall(text)
        marks = len(re.findall(f"^{re.escape(MARK)}$", text, re.M))
        assert len(found) == marks, f"{page}: a {MARK} line not right before a ```bash or ```yaml fence"
        blocks += [(f"{page.relative_to(REPO)}#{i + 1}", block) for i, (lang, block) in enumerate(found)
                   if lang == language]
    return blocks


def test_readme_fits_in_150_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def test_readme_and_the_docs_have_runnable_blocks():
    names = [name for name, _ in runnable_blocks()]
    assert any(name.startswith("README.md") for name in names) and any(name.startswith("docs/") for name in names)


@pytest.fixture(scope="module")
def shell_path(tmp_path_factory) -> str:
    """PATH with a `signsearch` that runs this checkout's results/cli.py main, the function the installed script
    calls (tests/results/test_cli.py checks the entry point): a worktree may share a venv installed from elsewhere.
    A block that activates .venv puts the installed script first."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "signsearch"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m results.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@pytest.mark.slow
@pytest.mark.parametrize("name,block", runnable_blocks(), ids=[name for name, _ in runnable_blocks()])
def test_runnable_block_runs_as_written(name, block, shell_path, tmp_path):
    if not (REPO / ".venv" / "bin" / "activate").exists():  # a worktree on a shared venv: PATH is set up above
        block = "\n".join(line for line in block.splitlines() if not line.startswith("source .venv/bin/activate"))
    env = {**os.environ, "PATH": shell_path, "PYTHONPATH": str(REPO), "HOME": os.environ.get("HOME", str(tmp_path))}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, \
        f"{name}:\n{block}\n--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("name,block", runnable_blocks("yaml"), ids=[name for name, _ in runnable_blocks("yaml")])
def test_runnable_search_file_is_valid(name, block, tmp_path):
    from tune.space import load_search_file

    path = tmp_path / "space.yaml"
    path.write_text(block + "\n")
    load_search_file(path)


def test_readme_links_lead_to_files():
    """README.md is read on the repository's web page, where the site's generated pages do not exist."""
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (REPO / "README.md").read_text())
    missing = [link for link in links if "://" not in link and not (REPO / link).exists()]
    assert links and not missing, missing
