"""Where a search's files live: a local (or NFS) folder, or a URI such as s3://bucket/prefix.

Tune and Train write trial results and checkpoints through Ray's storage layer (pyarrow filesystems);
the few files this project writes itself (search.yaml, summary.json, best_config.yaml) go through the
same pyarrow filesystem, so an experiment is complete wherever it is stored.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs

from train.files import write_atomic


def is_uri(location: str) -> bool:
    return "://" in location


def normalise(location: str) -> str:
    """URIs as given (minus a trailing slash); local paths absolute, since Ray needs them so."""
    return location.rstrip("/") if is_uri(location) else str(Path(location).expanduser().resolve())


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
            fs, path = pyarrow.fs.FileSystem.from_uri(candidate.uri)
            if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
                fs.create_dir(path, recursive=True)
                return candidate
        raise FileExistsError(f"{root}: {name} and 998 numbered variants of it exist")

    def remove(self) -> None:
        """Delete the experiment folder and everything in it."""
        fs, path = pyarrow.fs.FileSystem.from_uri(self.uri)
        if fs.get_file_info(path).type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(path)

    @classmethod
    def at(cls, location: str) -> "Experiment":
        location = normalise(location)
        return cls(posixpath.dirname(location) if is_uri(location) else str(Path(location).parent),
                   posixpath.basename(location))

    @property
    def uri(self) -> str:
        return posixpath.join(self.root, self.name) if is_uri(self.root) else str(Path(self.root) / self.name)

    def child(self, *parts: str) -> str:
        return posixpath.join(self.uri, *parts) if is_uri(self.root) else str(Path(self.uri, *parts))

    def local_dir(self) -> Path:
        """A local folder for files that must be local (W&B offline runs): the experiment itself when it
        is local, else ./runs/<name>."""
        return Path(self.uri) if not is_uri(self.root) else Path("runs").resolve() / self.name

    def write_text(self, filename: str, text: str) -> str:
        """Write a file into the experiment (atomically: temp + rename locally, one PUT on object stores)."""
        if not is_uri(self.root):
            (Path(self.uri) / filename).parent.mkdir(parents=True, exist_ok=True)  # filename may name a subfolder
            write_atomic(Path(self.uri) / filename, text)
            return self.child(filename)
        fs, path = pyarrow.fs.FileSystem.from_uri(self.child(filename))
        fs.create_dir(posixpath.dirname(path), recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(text.encode())
        return self.child(filename)

    def read_text(self, filename: str) -> str:
        return read_text(self.child(filename))

    def remove_file(self, filename: str) -> None:
        fs, path = pyarrow.fs.FileSystem.from_uri(self.child(filename))
        fs.delete_file(path)

    def has(self, filename: str) -> bool:
        fs, path = pyarrow.fs.FileSystem.from_uri(self.child(filename))
        return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def read_text(location: str) -> str:
    """A whole file, from a local path or a URI."""
    fs, path = pyarrow.fs.FileSystem.from_uri(normalise(location))
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def experiments(root: str, prefix: str, marker: str) -> list[Experiment]:
    """Experiments under ``root`` whose name starts with ``prefix`` and which hold ``marker``, oldest first."""
    root = normalise(root)
    fs, path = pyarrow.fs.FileSystem.from_uri(root)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        return []
    names = sorted(info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(path))
                   if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(prefix))
    found = [Experiment(root, name) for name in names]
    return [experiment for experiment in found if experiment.has(marker)]
