"""Where an experiment's files live: a local (or NFS) folder, or a URI such as s3://bucket/prefix.

Tune and Train write trial results and checkpoints through Ray's storage layer (pyarrow filesystems);
the files this project writes and reads itself go through the same pyarrow filesystems, so an
experiment is complete, and readable, wherever it is stored. This is the one wrapper around them.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pyarrow.fs

from infra.files import write_atomic


def is_uri(location: str) -> bool:
    return "://" in location


def normalise(location: str) -> str:
    """URIs as given (minus a trailing slash); local paths absolute, since Ray needs them so."""
    return location.rstrip("/") if is_uri(location) else str(Path(location).expanduser().resolve())


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
    """A whole file, from a local path or a URI."""
    return read_bytes(location).decode()


def write_bytes(location: str, data: bytes) -> str:
    """Write a whole file, its folder made first: temp + rename locally, one PUT on object stores (never half
    a file either way). Returns ``location``."""
    if not is_uri(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(location), data)
        return location
    fs, path = _fs(location)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(data)
    return location


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


@dataclass(frozen=True)
class Experiment:
    """One experiment folder: ``root``/``name``."""

    root: str
    """Storage root: an absolute local path or a URI."""
    name: str
    """Folder name under the root (``<experiment>-<time>``)."""

    @classmethod
    def create(cls, root: str, name: str) -> "Experiment":
        """A new, empty experiment folder ``name`` under ``root``, or ``name-2``, ``name-3``, ... when
        taken: two searches started in the same second never share a folder. Local (and NFS) folders
        are created exclusively (mkdir); object stores have no exclusive create, so for URIs a name
        is taken when nothing exists under it yet."""
        root = normalise(root)
        for attempt in range(1, 1000):
            candidate = cls(root, name if attempt == 1 else f"{name}-{attempt}")
            if not is_uri(root):
                Path(root).mkdir(parents=True, exist_ok=True)
                try:
                    Path(candidate.uri).mkdir()
                except FileExistsError:
                    continue
                return candidate
            fs, path = _fs(candidate.uri)
            if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
                fs.create_dir(path, recursive=True)
                return candidate
        raise FileExistsError(f"{root}: {name} and 998 numbered variants of it exist")

    @classmethod
    def at(cls, location: str) -> "Experiment":
        location = normalise(location)
        return cls(posixpath.dirname(location) if is_uri(location) else str(Path(location).parent),
                   posixpath.basename(location))

    def remove(self) -> None:
        """Delete the experiment folder and everything in it."""
        fs, path = _fs(self.uri)
        if fs.get_file_info(path).type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(path)

    @property
    def uri(self) -> str:
        return join(self.root, self.name)

    def child(self, *parts: str) -> str:
        return join(self.uri, *parts)

    def local_dir(self) -> Path:
        """A local folder for files that must be local (W&B offline runs, the SQLite study): the experiment
        itself when it is local, else ./runs/<name>."""
        return Path(self.uri) if not is_uri(self.root) else Path("runs").resolve() / self.name

    def filesystem(self) -> pyarrow.fs.FileSystem:
        """The pyarrow filesystem the experiment is on (Tune's and Train's storage paths are paths on it)."""
        return _fs(self.uri)[0]

    def write_text(self, filename: str, text: str) -> str:
        """Write a file into the experiment, whole or not at all; return its path or URI."""
        return write_bytes(self.child(filename), text.encode())

    def read_text(self, filename: str) -> str:
        return read_text(self.child(filename))

    def has(self, filename: str) -> bool:
        return is_file(self.child(filename))

    def remove_file(self, filename: str) -> None:
        fs, path = _fs(self.child(filename))
        fs.delete_file(path)

    def resolve(self, recorded: Optional[str]) -> Optional[str]:
        """A trial or checkpoint path as summary.json records it (relative to the experiment folder, so a
        moved or copied experiment still reads; a path outside it as recorded), as a location."""
        if not recorded:
            return None
        if is_uri(recorded) or os.path.isabs(recorded):
            return recorded
        return self.child(*recorded.split("/"))

    def relative(self, path: Optional[str]) -> Optional[str]:
        """``path`` (a storage path of Tune or Train) relative to the experiment folder, when inside it."""
        if not path:
            return path
        _, root = _fs(self.uri)
        inner = path.split("://", 1)[-1] if is_uri(path) else path
        root = root.rstrip("/")
        if inner == root or not inner.startswith(root + "/"):
            return path
        return posixpath.relpath(inner, root)


def experiments(root: str, prefix: str, marker: str) -> list[Experiment]:
    """Experiments under ``root`` whose name starts with ``prefix`` and which hold ``marker``, oldest first."""
    root = normalise(root)
    fs, path = _fs(root)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        return []
    names = sorted(info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(path))
                   if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(prefix))
    return [experiment for experiment in (Experiment(root, name) for name in names) if experiment.has(marker)]
