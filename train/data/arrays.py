"""Large uint8 ``.npy`` files for the cache: blocks reserved before writing, rows packed or gathered in
bounded steps, data fsynced before the meta file that makes a folder trusted."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

# Rows copied per step when packing or gathering: bounds the extra memory to
# GATHER_ROWS * size * size * 3 bytes (64 MiB at 224 px).
GATHER_ROWS = 448


def reserved_memmap(target: Path, shape: tuple[int, ...]) -> np.memmap:
    """A new uint8 .npy file of ``shape``, memory-mapped, with every block of it allocated on disk first.

    ``open_memmap`` makes a sparse file; a page written through the map where the disk has no block
    left kills the process with SIGBUS (no exception, no message, the temp folder left behind).
    ``posix_fallocate`` reserves the blocks up front and fails with ENOSPC instead (a plain free-space
    check where the file system cannot allocate ahead); callers turn that into one line.
    """
    images = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=shape)
    fd = os.open(target, os.O_RDWR)
    try:
        length = os.fstat(fd).st_size
        try:
            os.posix_fallocate(fd, 0, length)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            if shutil.disk_usage(target.parent).free < length:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from None
    finally:
        os.close(fd)
    return images


def truncate_rows(target: Path, rows: int) -> None:
    """Rewrite ``target`` keeping its first ``rows`` rows (the header records the row count)."""
    full = np.load(target, mmap_mode="r")
    packed = target.with_name("packed.npy")
    out = reserved_memmap(packed, (rows,) + full.shape[1:])
    for start in range(0, rows, GATHER_ROWS):
        stop = min(start + GATHER_ROWS, rows)
        out[start:stop] = full[start:stop]
    out.flush()
    del out, full
    os.replace(packed, target)


def gather(images: np.ndarray, index: np.ndarray, target: Path) -> None:
    """Write ``images[index]`` to ``target`` without holding more than GATHER_ROWS rows in memory."""
    out = reserved_memmap(target, (len(index),) + images.shape[1:])
    for start in range(0, len(index), GATHER_ROWS):
        out[start:start + GATHER_ROWS] = images[index[start:start + GATHER_ROWS]]
    out.flush()
    del out


def write_meta_last(folder: Path, meta: dict[str, Any]) -> None:
    """fsync the data files, then write meta.json: a build is trusted only once its meta exists."""
    for path in folder.iterdir():
        _fsync(path)
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    _fsync(folder / "meta.json")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
