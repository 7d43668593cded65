"""The track-aware, class-stratified, seeded train/validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.train.layouts import write_gtsrb
from train.data import TRACK_STRIDE, DataError, read_records
from train.split import train_val_split


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
