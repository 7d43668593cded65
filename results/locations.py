"""Files of an experiment wherever it is stored: a local folder, or s3:// / gs:// / file:// through the
pyarrow filesystems the search itself writes with (tune/storage.py)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Optional

import pyarrow.fs

from tune.storage import is_uri, normalise


def join(location: str, *parts: str) -> str:
    return posixpath.join(location, *parts) if is_uri(location) else str(Path(location, *parts))


def _fs(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    return pyarrow.fs.FileSystem.from_uri(normalise(location))


def kind(location: str) -> pyarrow.fs.FileType:
    """File, Directory or NotFound (also for a URI whose bucket cannot be reached)."""
    try:
        fs, path = _fs(location)
        return fs.get_file_info(path).type
    except (OSError, pyarrow.ArrowException):
        return pyarrow.fs.FileType.NotFound


def is_file(location: str) -> bool:
    return kind(location) == pyarrow.fs.FileType.File


def is_dir(location: str) -> bool:
    return kind(location) == pyarrow.fs.FileType.Directory


def read_bytes(location: str) -> bytes:
    fs, path = _fs(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def read_text(location: str) -> str:
    return read_bytes(location).decode()


def write_bytes(location: str, data: bytes) -> None:
    """Write a whole file (its folder made first; one PUT on object stores, so never half a file there)."""
    fs, path = _fs(location)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def local_copy(location: str, scratch: Path) -> Path:
    """``location`` as a local path: itself when a plain path, else (any URI) a copy under ``scratch``."""
    if not is_uri(location):
        return Path(location)
    target = scratch / posixpath.basename(location.rstrip("/"))
    if is_file(location):
        target.write_bytes(read_bytes(location))
    else:
        fs, path = _fs(location)
        target.mkdir(parents=True)  # copy_files writes files into it, it does not make the folder
        pyarrow.fs.copy_files(path, str(target), source_filesystem=fs,
                              destination_filesystem=pyarrow.fs.LocalFileSystem())
    return target


def resolve(experiment: str, recorded: Optional[str]) -> Optional[str]:
    """A trial or checkpoint path as summary.json records it, as a location under ``experiment``.

    Summaries store them relative to the experiment folder, so a copied or moved experiment still
    resolves; older summaries hold absolute paths: those are re-rooted at the experiment's current place
    (the part after the experiment's folder name) where that exists, else kept as recorded.
    """
    if not recorded:
        return None
    if not (is_uri(recorded) or os.path.isabs(recorded)):
        return join(experiment, *recorded.split("/"))
    # Absolute: the same path below the experiment's current place first (a copy must use its own files,
    # not the original's), else the path as recorded.
    parts = recorded.rstrip("/").split("/")
    name = posixpath.basename(experiment.rstrip("/"))
    if name in parts:
        moved = join(experiment, *parts[len(parts) - parts[::-1].index(name):])
        if kind(moved) != pyarrow.fs.FileType.NotFound:
            return moved
    return recorded
