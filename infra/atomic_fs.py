"""A local pyarrow filesystem on which every file is written whole or not at all: Ray Tune's and Ray Train's
storage for experiments on a local (or NFS) path.

Tune copies its experiment state (``experiment_state-*.json``, the searcher's state, ``tuner.pkl``) from the
driver's staging folder to storage after every checkpoint, and copies *every* such file each time (the ones read
back by an earlier ``--resume`` included); Train writes its checkpoint manager's snapshot the same way. pyarrow's
local filesystem writes a file in place, so a driver killed during a copy leaves files cut off, down to 0 bytes,
and the newest state ``--resume`` would read is unreadable: the search could not be continued at all. Here
``open_output_stream`` writes ``.<name>.<random>.part`` beside the file and renames it into place on close (one
``os.rename``, atomic on POSIX), so a reader sees the old file or the new one. Object stores (s3://, gs://) never
show half an object, so they keep Ray's own filesystem.

Public pyarrow API: a :class:`pyarrow.fs.FileSystemHandler` served by :class:`pyarrow.fs.PyFileSystem`; it pickles
by its class, so the trials and Train workers Ray ships it to write the same way.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Optional

import pyarrow
import pyarrow.fs

from infra.files import new_file_mode

PART = ".part"


class _WholeFile:
    """A writable file that becomes visible under its name only when closed."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder, name = os.path.split(path)
        self.temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}{PART}")
        self.handle = open(self.temp, "wb")
        os.fchmod(self.handle.fileno(), new_file_mode())
        self.closed = False

    def write(self, data: Any) -> int:
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.handle.close()
        os.replace(self.temp, self.path)


class AtomicLocalFiles(pyarrow.fs.FileSystemHandler):
    """pyarrow's LocalFileSystem, except that files are written to a temp name and renamed into place."""

    def __init__(self) -> None:
        self.local = pyarrow.fs.LocalFileSystem()

    def __reduce__(self):
        return AtomicLocalFiles, ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalFiles)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "atomic-local"

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pyarrow.fs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pyarrow.fs.FileSelector) -> list[pyarrow.fs.FileInfo]:
        return self.local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of /")

    def delete_file(self, path: str) -> None:
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self.local.open_input_stream(src) as source:
            self._write_stream(dest, source)

    def open_input_stream(self, path: str) -> pyarrow.NativeFile:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> pyarrow.NativeFile:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Optional[dict] = None) -> pyarrow.NativeFile:
        return pyarrow.PythonFile(_WholeFile(path), mode="w")

    def open_append_stream(self, path: str, metadata: Optional[dict] = None) -> pyarrow.NativeFile:
        return self.local.open_append_stream(path)

    def _write_stream(self, dest: str, source: pyarrow.NativeFile) -> None:
        target = _WholeFile(dest)
        try:
            while chunk := source.read(1 << 20):
                target.write(chunk)
        except BaseException:
            target.handle.close()
            os.unlink(target.temp)
            raise
        target.close()


def atomic_local_filesystem() -> pyarrow.fs.PyFileSystem:
    return pyarrow.fs.PyFileSystem(AtomicLocalFiles())


def ray_storage(location: str) -> tuple[str, Optional[pyarrow.fs.FileSystem]]:
    """(storage_path, storage_filesystem) for Ray's RunConfig / Tuner.restore: a local path or file:// URI on
    :class:`AtomicLocalFiles`; any other URI as given, on Ray's own filesystem (None)."""
    if location.startswith("file://"):
        location = location.removeprefix("file://")
    elif "://" in location:
        return location, None
    return os.path.abspath(location), atomic_local_filesystem()
