"""The synthetic traffic-sign generator: official GTSRB layout, determinism, atomic and idempotent writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import train.data.synthetic as synthetic
from tests.conftest import REPO
from train.config import SyntheticConfig
from train.data import DataError, detect_format, read_records

TINY = dict(num_classes=3, tracks_per_class=2, frames_per_track=3, test_per_class=2, frame_size=24)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path):
    a = files(synthetic.ensure_synthetic(tmp_path / "a", SyntheticConfig(**TINY, seed=5)))
    b = files(synthetic.ensure_synthetic(tmp_path / "b", SyntheticConfig(**TINY, seed=5)))
    c = files(synthetic.ensure_synthetic(tmp_path / "c", SyntheticConfig(**TINY, seed=6)))
    assert a == b
    assert a.keys() == c.keys()
    images = [name for name in a if name.endswith(".ppm")]
    assert len(images) == 3 * 2 * 3 + 3 * 2
    assert sum(a[name] != c[name] for name in images) == len(images)


def test_official_gtsrb_layout(tmp_path: Path):
    root = synthetic.ensure_synthetic(tmp_path / "signs", SyntheticConfig(**TINY))
    base = root / "GTSRB"
    assert (base / "Final_Training" / "Images" / "00002" / "GT-00002.csv").is_file()
    assert (base / "Final_Training" / "Images" / "00001" / "00001_00002.ppm").is_file()
    assert (base / "Final_Test" / "Images" / "00005.ppm").is_file() and (base / "GT-final_test.csv").is_file()
    assert detect_format(root) == "synthetic"
    # Readable as plain GTSRB (zero-padded names) and as "synthetic" (names from the marker).
    plain = read_records("gtsrb", root, "train")
    named = read_records("synthetic", root, "train")
    assert plain.class_names == ["00000", "00001", "00002"]
    assert named.class_names == ["red-rim circle '1'", "blue triangle '8'", "yellow octagon 'X'"]
    assert len(np.unique(named.groups)) == 6  # 3 classes x 2 tracks
    test = read_records("synthetic", root, "test")
    assert sorted(np.bincount(test.labels).tolist()) == [2, 2, 2]


def test_frames_vary_grow_and_boxes_fit(tmp_path: Path):
    from PIL import Image

    root = synthetic.ensure_synthetic(tmp_path / "signs", SyntheticConfig(**TINY))
    for split in ("train", "test"):
        records = read_records("synthetic", root, split)
        sizes = np.array([Image.open(p).size for p in records.paths])
        assert len({tuple(s) for s in sizes}) > len(records) // 2  # frame sizes vary, as in GTSRB
        assert sizes.max() <= 24 + 8 and sizes.min() >= 8
        rois = records.rois
        assert np.all(rois[:, :2] >= 0) and np.all(rois[:, 2] < sizes[:, 0]) and np.all(rois[:, 3] < sizes[:, 1])
        # The sign fills most of the frame, with a border around it.
        assert np.all(rois[:, 2] - rois[:, 0] + 1 >= 0.5 * sizes[:, 0])
        assert np.all((rois[:, 0] > 0) & (rois[:, 1] > 0))
    train = read_records("synthetic", root, "train")
    first, last = Image.open(train.paths[0]).size, Image.open(train.paths[2]).size  # frames 0 and 2 of a track
    assert last[0] > first[0] and last[1] > first[1]  # the car approaches: the sign grows


def test_class_plates_are_distinct():
    classes = synthetic.sign_classes(43)
    assert len({c.name for c in classes}) == 43 and len({c.glyph for c in classes}) == 43
    assert len({(c.shape, c.scheme) for c in classes[:25]}) == 25


def test_ensure_is_a_no_op_for_the_same_config_and_rewrites_another(tmp_path: Path):
    cfg = SyntheticConfig(**TINY)
    root = synthetic.ensure_synthetic(tmp_path / "signs", cfg)
    marker = root / "synthetic.json"
    stamp = marker.stat().st_mtime_ns
    inode = root.stat().st_ino
    assert synthetic.ensure_synthetic(root, SyntheticConfig(**TINY)) == root
    assert marker.stat().st_mtime_ns == stamp and root.stat().st_ino == inode
    synthetic.ensure_synthetic(root, SyntheticConfig(**{**TINY, "num_classes": 2}))
    assert len(read_records("synthetic", root, "train").class_names) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["signs"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_synthetic_set(tmp_path: Path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DataError) as error:
        synthetic.ensure_synthetic(tmp_path / "mine", SyntheticConfig(**TINY))
    assert "is not a synthetic set" in str(error.value) and "\n" not in str(error.value)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("generator bug")

    monkeypatch.setattr(synthetic, "photo_for_test_set", broken)  # fails after the training set is written
    with pytest.raises(RuntimeError, match="generator bug"):
        synthetic.ensure_synthetic(tmp_path / "signs", SyntheticConfig(**TINY))
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_cli(tmp_path: Path, capsys):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "train.data.synthetic", "--out", str(tmp_path / "cli"), "--classes", "2",
               "--tracks", "1", "--frames", "2", "--test", "1", "--size", "20", "--seed", "3"]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2 classes, 4 training frames, 2 test images" in done.stdout
    assert len(read_records("synthetic", tmp_path / "cli", "train")) == 4
    # A bad value is one line on stderr and exit status 2 (run in-process: no second interpreter start).
    assert synthetic.main(["--out", str(tmp_path / "bad"), "--classes", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: data.synthetic.num_classes: got 1, allowed: 2..43"
    assert not (tmp_path / "bad").exists()
