"""MkDocs hooks (mkdocs.yml ``hooks:``): the reference pages are generated from the code on every build
(docs/reference.py), so a key or a flag added in code appears in the docs without editing them."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).parent))

import reference  # noqa: E402 - docs/ is no package: its folder is put on the path above


def on_files(files, config):
    for path, render in reference.PAGES.items():
        files.append(File.generated(config, path, content=render()))
    return files
