"""The track-aware, class-stratified, seeded train/validation split, and ASL's blocks of consecutive frames."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.layouts import write_gtsrb
from train.data import ASL_FRAME_BLOCK, TRACK_STRIDE, DataError, read_records
from train.data.split import train_val_split


def tracks(counts: list[int], frames: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(labels, groups) of a GTSRB-like set: class c has counts[c] tracks of ``frames`` frames."""
    labels, groups = [], []
    for label, count in enumerate(counts):
        for track in range(count):
            labels += [label] * frames
            groups += [label * TRACK_STRIDE + track] * frames
    return np.array(labels, dtype=np.int64), np.array(groups, dtype=np.int64)


def test_no_track_is_shared_and_every_image_is_used():
    labels, groups = tracks([7, 5, 12, 3, 2, 9])
    train, val = train_val_split(labels, groups, 0.2, seed=0)
    assert not set(groups[train]) & set(groups[val])
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_stratified_per_class():
    counts = [10, 5, 20, 3, 2, 1]
    labels, groups = tracks(counts)
    train, val = train_val_split(labels, groups, 0.2, seed=3)
    for label, count in enumerate(counts):
        train_tracks = len(np.unique(groups[train][labels[train] == label]))
        val_tracks = len(np.unique(groups[val][labels[val] == label]))
        assert train_tracks >= 1  # every class keeps a track in training
        if count >= 2:
            # ...and one in validation, about val_fraction of its tracks (at least 1, never all).
            assert val_tracks == min(max(round(0.2 * count), 1), count - 1)
        else:
            assert val_tracks == 0


def test_seeded():
    labels, groups = tracks([8] * 5)
    first = train_val_split(labels, groups, 0.25, seed=7)
    again = train_val_split(labels, groups, 0.25, seed=7)
    other = train_val_split(labels, groups, 0.25, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_per_image_groups_give_a_stratified_image_split():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, val = train_val_split(labels, np.arange(len(labels)), 0.1, seed=0)
    assert np.bincount(labels[val]).tolist() == [1, 2, 3, 4]


def test_single_group_per_class_cannot_be_split():
    labels, groups = tracks([1, 1, 1])
    with pytest.raises(DataError, match="each of the 3 classes has a single group"):
        train_val_split(labels, groups, 0.2, seed=0)


def test_split_of_gtsrb_records_keeps_tracks_together(tmp_path: Path):
    write_gtsrb(tmp_path, class_ids=(0, 1, 2), tracks=4, frames=3)
    records = read_records("gtsrb", tmp_path, "train")
    train, val = train_val_split(records.labels, records.groups, 0.25, seed=0)
    val_tracks = {(p.parent.name, p.name.split("_")[0]) for p in np.array(records.paths)[val]}
    train_tracks = {(p.parent.name, p.name.split("_")[0]) for p in np.array(records.paths)[train]}
    assert len(val_tracks) == 3 and not val_tracks & train_tracks  # one track of each class held out


# ----------------------------------------------------------------------------- ASL frame blocks
def _write_asl_videos(root: Path, classes: tuple[str, ...], frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """ASL-layout training images that are consecutive video frames: each frame is a small step (1/50 of
    the way) from one random key texture towards the next, so neighbours are near-duplicates and frames
    far apart are not. PNG, so the steps survive encoding. Returns path name -> pixels as written."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = {}
    for name in classes:
        keys = rng.normal(128, 60, size=(frames // 50 + 2, 8, 8, 3))
        folder = root / "asl_alphabet_train" / "asl_alphabet_train" / name
        folder.mkdir(parents=True)
        for number in range(1, frames + 1):
            step, within = divmod(number - 1, 50)
            image = keys[step] + (keys[step + 1] - keys[step]) * within / 50
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{name}{number}.png")
            pixels[f"{name}{number}.png"] = image.astype(np.float64)
    (root / "asl_alphabet_test").mkdir()
    return pixels


def _leaks(records, pixels: dict, train: np.ndarray, val: np.ndarray, threshold: float) -> list[Path]:
    """Validation images whose nearest training image of the same class is a near-duplicate."""
    flat = np.stack([pixels[path.name].ravel() for path in records.paths])
    leaking = []
    for label in np.unique(records.labels[val]):
        mine, theirs = val[records.labels[val] == label], train[records.labels[train] == label]
        distance = np.sqrt(((flat[mine, None, :] - flat[None, theirs, :]) ** 2).mean(axis=2))  # RMS, grey levels
        leaking += [records.paths[i] for i in mine[distance.min(axis=1) <= threshold]]
    return leaking


def test_asl_frame_blocks_keep_near_duplicate_frames_out_of_validation(tmp_path: Path):
    frames = 3 * ASL_FRAME_BLOCK
    pixels = _write_asl_videos(tmp_path, ("A", "B", "del"), frames)
    records = read_records("asl", tmp_path, "train")
    # "Near-duplicate": closer than 3 typical steps between neighbouring frames (RMS pixel distance).
    steps = [np.sqrt(np.mean((pixels[f"A{n + 1}.png"] - pixels[f"A{n}.png"]) ** 2)) for n in range(1, frames)]
    threshold = 3 * float(np.median(steps))
    far = np.sqrt(np.mean((pixels["A1.png"] - pixels[f"A{ASL_FRAME_BLOCK // 2}.png"]) ** 2))
    assert far > 5 * threshold  # frames half a block apart are no near-duplicates

    per_image = train_val_split(records.labels, np.arange(len(records)), 1 / 3, seed=0)
    leaked = _leaks(records, pixels, *per_image, threshold)
    assert len(leaked) > 0.9 * len(per_image[1])  # nearly every validation frame has a neighbour in training

    train, val = train_val_split(records.labels, records.groups, 1 / 3, seed=0)
    assert len(val) == 3 * ASL_FRAME_BLOCK  # one whole block of each class
    held_out = {}
    for index in val:
        held_out.setdefault(records.groups[index], []).append(int(re.sub(r"\D", "", records.paths[index].stem)))
    for numbers in held_out.values():  # whole blocks of consecutive frames
        assert sorted(numbers) == list(range(min(numbers), min(numbers) + ASL_FRAME_BLOCK))
        assert (min(numbers) - 1) % ASL_FRAME_BLOCK == 0
    leaked = _leaks(records, pixels, train, val, threshold)
    # Only the few frames at the two ends of a held-out block can have a near-duplicate in training (the
    # frames just outside the block); per-image, it was nearly every frame.
    assert len(leaked) <= 2 * 5 * len(held_out)
    for path in leaked:
        number = int(re.sub(r"\D", "", path.stem))
        assert min((number - 1) % ASL_FRAME_BLOCK, ASL_FRAME_BLOCK - 1 - (number - 1) % ASL_FRAME_BLOCK) < 5
