"""The preprocessed, memory-mapped image cache: one entry per source split and pixel options.

Every image is decoded, optionally cropped to its sign box, and resized once, into one uint8 array
file; trials then open it with ``np.load(mmap_mode="r")``, so K trials on one node share a single
copy through the OS page cache instead of decoding K times. Layout under :func:`cache_root`::

    <format>-<split>-<size>px-<roi|full>-<fingerprint16>/
        images.npy    (N, size, size, 3) uint8
        labels.npy    (N,) int64 class indices
        groups.npy    (N,) int64 track / image ids (what the validation split keeps together)
        meta.json     class names, fingerprint, counts, skipped files; written last
        split-<digest16>/{train_images.npy, val_images.npy, train_index.npy, val_index.npy, meta.json}
    <entry>.lock      filelock serialising builders of one entry

The fingerprint hashes the source files (path relative to the data root, size, mtime) together with
labels, groups, boxes, class names and the options that change pixels (format, split, image size, ROI
crop), so a changed file or option gives a new entry. ``val_fraction``/``split_seed`` are not part
of it: the split is recomputed from the cached labels and groups on every load, and the train/val
images of each distinct split are gathered once into ``split-<digest16>/`` (a copy, not a decode),
so both parts stay memory-mapped and shared too. Old entries are never deleted automatically.

Builds are atomic (:func:`infra.files.build_once`): everything is written into a hidden temp folder
beside the final one and renamed into place; a build that fails or is killed leaves only a temp
folder, which no reader trusts and the next builder (holding the entry's lock) deletes before
rebuilding. The data API on top of it (``prepare``, ``load_test``) is :mod:`train.data.prepared`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from infra.files import build_once
from train.config import DataConfig
from train.data.arrays import gather, reserved_memmap, truncate_rows, write_meta_last
from train.data.decode import IMAGE_ERRORS, load_image
from train.data.records import DataError, Records

log = logging.getLogger("train.data.cache")

CACHE_VERSION = 1
CACHE_ENV = "SIGNSEARCH_CACHE"
DEFAULT_CACHE = "~/.cache/signsearch"
# Images decoded per batch of thread-pool work: bounds decoded-but-unwritten images held in memory.
DECODE_CHUNK = 512


@dataclass
class Entry:
    """One complete cache entry, its arrays opened (images memory-mapped)."""

    path: Path
    lock: Path
    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    meta: dict[str, Any]


def cache_root(cfg: DataConfig) -> Path:
    """``cfg.cache_dir``, else $SIGNSEARCH_CACHE, else ~/.cache/signsearch (absolute)."""
    raw = cfg.cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(raw).expanduser().absolute()


# ----------------------------------------------------------------------------- keys


def fingerprint(records: Records, fmt: str, split: str, image_size: int, roi_crop: bool) -> str:
    """sha256 hex of the source files (relative path, size, mtime) and everything that shapes the arrays."""
    crop = _crops(records, roi_crop)
    digest = hashlib.sha256()
    options = {"version": CACHE_VERSION, "format": fmt, "split": split, "image_size": image_size,
               "roi_crop": crop, "class_names": records.class_names}
    digest.update(json.dumps(options, sort_keys=True).encode())
    digest.update(records.labels.astype(np.int64).tobytes())
    digest.update(records.groups.astype(np.int64).tobytes())
    if crop:
        digest.update(records.rois.astype(np.int64).tobytes())
    for path in records.paths:
        try:
            stat = path.stat()
        except OSError as error:
            raise DataError(f"image {path} vanished or cannot be read while hashing ({error.strerror})") from None
        digest.update(f"{_relative(path, records.root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _crops(records: Records, roi_crop: bool) -> bool:
    """Whether images are cropped: only layouts with boxes crop, so roi_crop is moot for the others."""
    return bool(roi_crop) and records.rois is not None


def _entry_name(fmt: str, split: str, size: int, crop: bool, digest: str) -> str:
    return f"{fmt}-{split}-{size}px-{'roi' if crop else 'full'}-{digest[:16]}"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# ----------------------------------------------------------------------------- base entry


def open_named(cfg: DataConfig, cache_key: str) -> Optional[Entry]:
    """The complete entry named ``cache_key`` (a ``PreparedData.cache_key``), or None where there is none."""
    root = cache_root(cfg)
    return _open_entry(root / cache_key, root / f"{cache_key}.lock", cache_key.rsplit("-", 1)[-1])


def cached(cfg: DataConfig, fmt: str, split: str, records: Records, decode_threads: Optional[int] = None) -> Entry:
    """The cache entry for ``records``: opened if complete, else built under the entry's lock."""
    crop = _crops(records, cfg.roi_crop)
    digest = fingerprint(records, fmt, split, cfg.image_size, cfg.roi_crop)
    root = cache_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    name = _entry_name(fmt, split, cfg.image_size, crop, digest)
    final, lock = root / name, root / f"{name}.lock"
    built = []

    def write(temp: Path) -> None:
        built.append(temp)
        _write_entry(temp, final, records, fmt, split, cfg, crop, digest, decode_threads)

    entry = build_once(final, lock, lambda: _open_entry(final, lock, digest), write,
                       lambda error: _cannot_write(root, error))
    if entry is None:
        raise DataError(f"cache entry {final} was built but cannot be opened (disk full or removed?)")
    if not built:
        log.info("cache hit: %s", final)
    return entry


def check_bad_images(entry: Entry, cfg: DataConfig) -> None:
    """Checked on every open, not only when built: data.max_bad_fraction may be stricter than it was then."""
    meta = entry.meta
    _check_bad(meta["bad_count"], meta["source_count"], meta["bad_examples"], Path(meta["root"]),
               cfg.max_bad_fraction, warn=False)


def _open_entry(final: Path, lock: Path, digest: str) -> Optional[Entry]:
    """The entry at ``final`` when it is a complete build of ``digest`` (or of a fingerprint starting with
    it, for an entry opened by name), else None (never trusted)."""
    try:
        meta = json.loads((final / "meta.json").read_text())
        if meta.get("complete") is not True or not str(meta.get("fingerprint")).startswith(digest) \
                or meta.get("version") != CACHE_VERSION:
            return None
        images = np.load(final / "images.npy", mmap_mode="r")
        labels = np.load(final / "labels.npy")
        groups = np.load(final / "groups.npy")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    count, size = meta["count"], meta["image_size"]
    if images.shape != (count, size, size, 3) or images.dtype != np.uint8 \
            or labels.shape != (count,) or groups.shape != (count,):
        return None
    return Entry(final, lock, images, labels, groups, meta)


def _write_entry(temp: Path, final: Path, records: Records, fmt: str, split: str, cfg: DataConfig, crop: bool,
                 digest: str, decode_threads: Optional[int] = None) -> None:
    """Decode every image into ``temp``, which build_once then renames to ``final``."""
    started = time.monotonic()
    log.info("building cache %s from %d images under %s", final, len(records), records.root)
    good, bad = _decode_all(temp / "images.npy", records, cfg.image_size, crop, decode_threads)
    examples = [f"{_relative(records.paths[i], records.root)}: {reason}" for i, reason in bad[:5]]
    _check_bad(len(bad), len(records), examples, records.root, cfg.max_bad_fraction, warn=True)
    if bad:
        truncate_rows(temp / "images.npy", len(good))
    np.save(temp / "labels.npy", records.labels[good])
    np.save(temp / "groups.npy", records.groups[good])
    meta = {
        "version": CACHE_VERSION, "fingerprint": digest, "format": fmt, "split": split,
        "root": str(records.root), "image_size": cfg.image_size, "roi_crop": crop,
        "count": len(good), "source_count": len(records), "class_names": records.class_names,
        "bad_count": len(bad), "bad_examples": examples,
        "build_seconds": round(time.monotonic() - started, 3),
        "complete": True,
    }
    write_meta_last(temp, meta)
    log.info("cache %s built: %d images in %.1f s", final.name, len(good), time.monotonic() - started)


def _decode_all(target: Path, records: Records, size: int, crop: bool,
                threads: Optional[int] = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode into ``target`` (.npy), packing decoded rows first.

    Returns (indices of the decoded records, [(index, reason)] of the skipped ones); when some were
    skipped, the rows past ``len(indices)`` are unused and :func:`train.data.arrays.truncate_rows` drops them.
    """
    count = len(records)
    images = reserved_memmap(target, (count, size, size, 3))
    rois = records.rois if crop else None

    def decode(i: int) -> tuple[int, Optional[np.ndarray], str]:
        try:
            return i, load_image(records.paths[i], None if rois is None else rois[i], size, crop), ""
        except IMAGE_ERRORS as error:
            return i, None, " ".join(f"{type(error).__name__}: {error}".split())  # one line

    good: list[int] = []
    bad: list[tuple[int, str]] = []
    # PIL releases the GIL while decoding and resizing, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=threads or _decode_threads()) as pool:
        for start in range(0, count, DECODE_CHUNK):
            for i, pixels, reason in pool.map(decode, range(start, min(start + DECODE_CHUNK, count))):
                if pixels is None:
                    bad.append((i, reason))
                else:
                    images[len(good)] = pixels  # skipped files leave no hole: rows stay packed
                    good.append(i)
    images.flush()
    del images
    return np.asarray(good, dtype=np.int64), bad


def _cannot_write(folder: Path, error: OSError) -> DataError:
    """One line for a cache folder that is full or cannot be written."""
    return DataError(f"cache folder {folder}: cannot write the cache entry ({error.strerror or error}); free space "
                     f"there or set data.cache_dir (or ${CACHE_ENV}) to a writable folder with room")


def _decode_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _check_bad(bad: int, total: int, examples: list[str], root: Path, allowed: float, warn: bool) -> None:
    """Fail when more than ``allowed`` of the images (or all of them) were unreadable; else log them."""
    if bad == 0:
        return
    fraction = bad / total
    what = f"{bad} of {total} images under {root} are unreadable or corrupt ({fraction:.1%}; first: {examples[0]})"
    if bad == total or fraction > allowed:
        raise DataError(f"{what}; allowed: at most data.max_bad_fraction={allowed} of them")
    if warn:
        log.warning("skipping them: %s", what)


# ----------------------------------------------------------------------------- split copies


def split_images(entry: Entry, train_idx: np.ndarray, val_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped train and val images of this split, gathered from the entry once per split."""
    digest = hashlib.sha256(train_idx.tobytes() + b"|" + val_idx.tobytes()).hexdigest()[:16]
    final = entry.path / f"split-{digest}"

    def write(temp: Path) -> None:
        for name, index in (("train", train_idx), ("val", val_idx)):
            gather(entry.images, index, temp / f"{name}_images.npy")
            np.save(temp / f"{name}_index.npy", index)
        write_meta_last(temp, {"train": len(train_idx), "val": len(val_idx), "complete": True})

    # The base entry's lock serialises its split copies too: they live inside its folder.
    opened = build_once(final, entry.lock, lambda: _open_split(final, train_idx, val_idx), write,
                        lambda error: _cannot_write(entry.path, error))
    if opened is None:
        raise DataError(f"split cache {final} was built but cannot be opened (disk full or removed?)")
    return opened


def _open_split(final: Path, train_idx: np.ndarray,
                val_idx: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The (train, val) images at ``final`` when complete and made for exactly these indices, else None."""
    try:
        if json.loads((final / "meta.json").read_text()).get("complete") is not True:
            return None
        if not (np.array_equal(np.load(final / "train_index.npy"), train_idx)
                and np.array_equal(np.load(final / "val_index.npy"), val_idx)):
            return None
        train = np.load(final / "train_images.npy", mmap_mode="r")
        val = np.load(final / "val_images.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if len(train) != len(train_idx) or len(val) != len(val_idx):
        return None
    return train, val
