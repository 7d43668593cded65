"""The memory-mapped cache behind train.data.prepared: contents, hits and misses, atomicity, concurrency, bad images."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import train.data.cache as cache
import train.data.prepared as prepared
from tests.conftest import REPO
from tests.helpers.layouts import (
    BORDER,
    class_colour,
    corrupt,
    write_asl,
    write_gtsrb,
    write_gtsrb_kaggle,
    write_image,
    write_imagefolder,
)
from train.config import DataConfig, SyntheticConfig
from train.data import ASL_FRAME_BLOCK, DataError


def config(root: Path, tmp_path: Path, **fields) -> DataConfig:
    fields.setdefault("format", "gtsrb")
    fields.setdefault("image_size", 12)
    fields.setdefault("val_fraction", 0.34)
    return DataConfig(root=str(root), cache_dir=str(tmp_path / "cache"), **fields)


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every path the cache decodes, in order (a spy around the real decoder)."""
    seen: list[Path] = []
    real = cache.load_image

    def counting(path, *args, **kwargs):
        seen.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache, "load_image", counting)
    return seen


def entries(tmp_path: Path) -> list[str]:
    """Names of trusted-looking (non-hidden) entries in the cache, and of leftover temp folders."""
    root = tmp_path / "cache"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def assert_colours(images: np.ndarray, labels: np.ndarray, class_ids: list[int], where=(6, 6)) -> None:
    for image, label in zip(images, labels):
        assert np.abs(image[where].astype(int) - class_colour(class_ids[label])).max() <= 3


# ----------------------------------------------------------------------------- contents


def test_prepare_gtsrb(tmp_path: Path):
    write_gtsrb(tmp_path / "data", class_ids=(0, 3, 7), tracks=3, frames=2)
    data = prepared.prepare(config(tmp_path / "data", tmp_path))
    assert data.format == "gtsrb" and data.class_names == ["00000", "00003", "00007"]
    assert re.fullmatch(r"[0-9a-f]{64}", data.fingerprint)
    assert len(data.train) + len(data.val) == 18 and len(data.val) == 6  # one of three tracks per class
    for part in (data.train, data.val):
        assert isinstance(part.images, np.memmap) and not part.images.flags.writeable
        assert part.images.shape[1:] == (12, 12, 3) and part.images.dtype == np.uint8
        assert part.labels.dtype == np.int64 and part.groups.dtype == np.int64
        assert_colours(part.images, part.labels, [0, 3, 7])  # labels line up with pixels
    assert not set(data.train.groups) & set(data.val.groups)
    assert entries(tmp_path) == [f"gtsrb-train-12px-roi-{data.fingerprint[:16]}"]
    entry = tmp_path / "cache" / entries(tmp_path)[0]
    names = {p.name for p in entry.iterdir() if p.is_file()}
    assert names == {"images.npy", "labels.npy", "groups.npy", "meta.json"}


@pytest.mark.parametrize("roi_crop", [True, False])
def test_roi_crop_option(tmp_path: Path, roi_crop: bool):
    write_gtsrb_kaggle(tmp_path / "data", class_ids=(4, 5), tracks=2, frames=2)
    data = prepared.prepare(config(tmp_path / "data", tmp_path, format="gtsrb_kaggle", roi_crop=roi_crop))
    corner = data.train.images[:, 0, 0].astype(int)
    if roi_crop:  # cropped to the box: even the corner pixel is the sign colour
        assert_colours(data.train.images, data.train.labels, [4, 5], where=(0, 0))
    else:  # whole frame: the grey border survives in the corners
        assert np.abs(corner - BORDER).max() <= 3


def test_load_test_uses_training_class_indices(tmp_path: Path):
    write_gtsrb(tmp_path / "data", class_ids=(0, 3, 7), test_per_class=2, gt_place="images")
    cfg = config(tmp_path / "data", tmp_path)
    test, names = prepared.load_test(cfg)
    assert names == prepared.prepare(cfg).class_names
    assert test.labels.tolist() == [0, 1, 2, 0, 1, 2] and len(test.groups) == 6
    assert isinstance(test.images, np.memmap)
    assert_colours(test.images, test.labels, [0, 3, 7])


def test_asl_end_to_end_with_auto_format(tmp_path: Path):
    write_asl(tmp_path / "data", classes=("A", "B", "del"), per_class=4, frame_step=ASL_FRAME_BLOCK)
    cfg = config(tmp_path / "data", tmp_path, format="auto", val_fraction=0.25)
    data = prepared.prepare(cfg)
    assert data.format == "asl" and data.class_names == ["A", "B", "del"]
    assert np.bincount(data.val.labels).tolist() == [1, 1, 1]
    test, _ = prepared.load_test(cfg)
    assert test.labels.tolist() == [0, 1]  # no del_test.jpg, as in the real set


def test_imagefolder_without_test_split(tmp_path: Path):
    write_imagefolder(tmp_path / "data", split_dirs=False, per_class=4)
    cfg = config(tmp_path / "data", tmp_path, format="imagefolder", val_fraction=0.25)
    assert len(prepared.prepare(cfg).val) == 2
    with pytest.raises(DataError, match="has no test split"):
        prepared.load_test(cfg)


def test_prepare_generates_missing_synthetic_set(tmp_path: Path):
    synthetic = SyntheticConfig(num_classes=3, tracks_per_class=2, frames_per_track=2, test_per_class=1,
                                frame_size=20)
    cfg = config(tmp_path / "signs", tmp_path, format="synthetic", synthetic=synthetic, val_fraction=0.5)
    data = prepared.prepare(cfg)
    assert (tmp_path / "signs" / "synthetic.json").is_file()
    assert data.format == "synthetic" and len(data.class_names) == 3 and "circle" in data.class_names[0]
    assert len(data.train) == len(data.val) == 6
    test, names = prepared.load_test(cfg)
    assert len(test) == 3 and names == data.class_names


def test_cache_root_resolution(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SIGNSEARCH_CACHE", str(tmp_path / "env"))
    assert cache.cache_root(DataConfig(cache_dir=str(tmp_path / "cfg"))) == tmp_path / "cfg"
    assert cache.cache_root(DataConfig()) == tmp_path / "env"
    monkeypatch.delenv("SIGNSEARCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root(DataConfig()) == tmp_path / "home" / ".cache" / "signsearch"


def test_missing_root_is_one_line(tmp_path: Path):
    with pytest.raises(DataError) as error:
        prepared.prepare(config(tmp_path / "absent", tmp_path, format="auto"))
    assert "does not exist" in str(error.value) and "\n" not in str(error.value)


# ----------------------------------------------------------------------------- hits and misses


def test_second_prepare_is_a_hit(tmp_path: Path, decodes: list[Path]):
    write_gtsrb(tmp_path / "data", tracks=3, frames=2)
    cfg = config(tmp_path / "data", tmp_path)
    first = prepared.prepare(cfg)
    assert len(decodes) == 18
    images = tmp_path / "cache" / entries(tmp_path)[0] / "images.npy"
    stamp = images.stat().st_mtime_ns
    second = prepared.prepare(cfg)
    assert len(decodes) == 18 and images.stat().st_mtime_ns == stamp  # nothing decoded or written
    assert second.fingerprint == first.fingerprint
    assert np.array_equal(second.train.images, first.train.images)


def test_split_options_do_not_rebuild(tmp_path: Path, decodes: list[Path]):
    write_gtsrb(tmp_path / "data", tracks=4, frames=2)
    first = prepared.prepare(config(tmp_path / "data", tmp_path, val_fraction=0.25, split_seed=0))
    other_seed = prepared.prepare(config(tmp_path / "data", tmp_path, val_fraction=0.25, split_seed=1))
    bigger = prepared.prepare(config(tmp_path / "data", tmp_path, val_fraction=0.5, split_seed=0))
    assert len(decodes) == 24 and len(entries(tmp_path)) == 1
    assert first.fingerprint == other_seed.fingerprint == bigger.fingerprint
    assert not np.array_equal(np.sort(first.val.groups), np.sort(other_seed.val.groups))
    assert (len(first.val), len(bigger.val)) == (6, 12)


def test_changed_source_file_is_a_miss(tmp_path: Path, decodes: list[Path]):
    write_gtsrb(tmp_path / "data")
    cfg = config(tmp_path / "data", tmp_path)
    first = prepared.prepare(cfg)
    path = tmp_path / "data" / "GTSRB" / "Final_Training" / "Images" / "00001" / "00000_00000.ppm"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, newer mtime
    second = prepared.prepare(cfg)
    assert second.fingerprint != first.fingerprint and len(decodes) == 36
    write_image(path, (50, 50), (1, 2, 3))  # different size and content
    third = prepared.prepare(cfg)
    assert third.fingerprint not in (first.fingerprint, second.fingerprint) and len(decodes) == 54


def test_changed_option_is_a_miss(tmp_path: Path, decodes: list[Path]):
    write_gtsrb(tmp_path / "data")
    base = prepared.prepare(config(tmp_path / "data", tmp_path))
    resized = prepared.prepare(config(tmp_path / "data", tmp_path, image_size=10))
    uncropped = prepared.prepare(config(tmp_path / "data", tmp_path, roi_crop=False))
    assert len({base.fingerprint, resized.fingerprint, uncropped.fingerprint}) == 3
    assert resized.train.images.shape[1:] == (10, 10, 3) and len(decodes) == 54
    assert sorted(name.split("-")[2:4] for name in entries(tmp_path)) == [["10px", "roi"], ["12px", "full"],
                                                                         ["12px", "roi"]]


def test_roi_option_is_moot_without_boxes(tmp_path: Path, decodes: list[Path]):
    write_imagefolder(tmp_path / "data", per_class=4)
    a = prepared.prepare(config(tmp_path / "data", tmp_path, format="imagefolder", roi_crop=True, val_fraction=0.25))
    b = prepared.prepare(config(tmp_path / "data", tmp_path, format="imagefolder", roi_crop=False, val_fraction=0.25))
    assert a.fingerprint == b.fingerprint and len(decodes) == 8


# ----------------------------------------------------------------------------- atomicity and concurrency


def test_exception_mid_build_leaves_nothing_trusted(tmp_path: Path, monkeypatch):
    write_gtsrb(tmp_path / "data")
    cfg = config(tmp_path / "data", tmp_path)
    calls = []
    real = cache.load_image

    def failing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 5:
            raise RuntimeError("disk on fire")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache, "load_image", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        prepared.prepare(cfg)
    assert entries(tmp_path) == []  # no entry, and the temp folder was removed
    monkeypatch.setattr(cache, "load_image", real)
    assert len(prepared.prepare(cfg).train) + len(prepared.prepare(cfg).val) == 18


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_build_killed_mid_way_is_rebuilt(tmp_path: Path, decodes: list[Path]):
    write_gtsrb(tmp_path / "data")
    killed = run_python("""
        import os, signal, sys
        import train.data.cache as cache
        import train.data.prepared as prepared
        from train.config import DataConfig
        real, count = cache.load_image, []
        def dying(*args, **kwargs):
            count.append(1)
            if len(count) == 6:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like the OOM killer
            return real(*args, **kwargs)
        cache.load_image = dying
        prepared.prepare(DataConfig(format="gtsrb", root=sys.argv[1], cache_dir=sys.argv[2], image_size=12))
    """, str(tmp_path / "data"), str(tmp_path / "cache"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = entries(tmp_path)
    assert leftovers and all(name.startswith(".") and ".tmp-" in name for name in leftovers)
    data = prepared.prepare(config(tmp_path / "data", tmp_path))
    assert len(decodes) == 18 and len(data.train) + len(data.val) == 18
    assert entries(tmp_path) == [f"gtsrb-train-12px-roi-{data.fingerprint[:16]}"]  # stale temp removed


def test_concurrent_builders_build_once(tmp_path: Path):
    write_gtsrb(tmp_path / "data", tracks=3, frames=4)
    code = """
        import sys, time
        import train.data.cache as cache
        import train.data.prepared as prepared
        from train.config import DataConfig
        real = cache.load_image
        def slow(*args, **kwargs):
            with open(sys.argv[3], "a") as log:
                log.write("x")
            time.sleep(0.02)  # keep the build open long enough for the other process to arrive
            return real(*args, **kwargs)
        cache.load_image = slow
        data = prepared.prepare(DataConfig(format="gtsrb", root=sys.argv[1], cache_dir=sys.argv[2], image_size=12,
                                        val_fraction=0.34))
        print(data.fingerprint, len(data.train), len(data.val))
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [str(tmp_path / "data"), str(tmp_path / "cache"), str(tmp_path / "decodes.log")]
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert outputs[0][0] == outputs[1][0]
    assert len((tmp_path / "decodes.log").read_text()) == 36  # one build between them, not two
    assert len(entries(tmp_path)) == 1


# ----------------------------------------------------------------------------- bad images


def test_corrupt_images_are_skipped_up_to_the_limit(tmp_path: Path, caplog):
    write_gtsrb(tmp_path / "data", tracks=4, frames=5)  # 60 images
    corrupt(tmp_path / "data" / "GTSRB" / "Final_Training" / "Images" / "00002" / "00003_00001.ppm")
    data = prepared.prepare(config(tmp_path / "data", tmp_path, max_bad_fraction=0.05, val_fraction=0.25))
    assert len(data.train) + len(data.val) == 59
    assert "1 of 60 images" in caplog.text and "00003_00001.ppm" in caplog.text
    assert_colours(data.train.images, data.train.labels, [0, 1, 2])  # rows stay aligned with labels
    with pytest.raises(DataError) as error:  # the same cache entry, but a stricter limit
        prepared.prepare(config(tmp_path / "data", tmp_path, max_bad_fraction=0.0, val_fraction=0.25))
    assert "1 of 60 images" in str(error.value) and "max_bad_fraction=0.0" in str(error.value)


def test_too_many_corrupt_images_fail_in_one_line(tmp_path: Path):
    write_asl(tmp_path / "data", per_class=4)
    folder = tmp_path / "data" / "asl_alphabet_train" / "asl_alphabet_train" / "B"
    corrupt(folder / "B1.jpg")
    (folder / "B2.jpg").write_bytes((folder / "B2.jpg").read_bytes()[:40])  # truncated JPEG
    with pytest.raises(DataError) as error:
        prepared.prepare(config(tmp_path / "data", tmp_path, format="asl", max_bad_fraction=0.1))
    message = str(error.value)
    assert "\n" not in message
    assert "2 of 12 images" in message and "unreadable or corrupt" in message and "B/B1.jpg" in message
    assert "data.max_bad_fraction=0.1" in message
    assert entries(tmp_path) == []  # a failed build leaves nothing behind


@pytest.mark.slow  # train_model.py as a process, under a file-size limit
def test_a_cache_folder_without_room_is_one_line_and_leaves_no_temp_folder(tmp_path):
    """train_model.py on a new set whose decoded images do not fit: exit 2, one line naming the cache
    folder, no temp folder left. RLIMIT_FSIZE (with SIGXFSZ ignored: writes past it fail with EFBIG)
    stands in for a full disk, which the test cannot make; on a full disk the build's up-front block
    reservation (posix_fallocate) fails with ENOSPC the same way instead of a SIGBUS mid-write."""
    import resource

    import yaml

    write_imagefolder(tmp_path / "data", classes=("a", "b"), per_class=40)
    config_file = tmp_path / "trial.yaml"
    cache_dir = tmp_path / "cache"
    config_file.write_text(yaml.safe_dump({"data": {"format": "imagefolder", "root": str(tmp_path / "data"),
                                                    "image_size": 64, "cache_dir": str(cache_dir)},
                                           "model": {"name": "small_cnn"}}))
    limit = 256 * 1024  # bytes; the decoded images take 80 x 64 x 64 x 3 = 983,040

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, str(REPO / "train" / "train_model.py"), "--config", str(config_file),
                             "--address", "local", "--num-cpus", "1"], cwd=REPO, capture_output=True, text=True,
                            timeout=180, preexec_fn=small_files, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"error: cache folder {cache_dir}: cannot write the cache entry (File too large); free space there or set "
        f"data.cache_dir (or $SIGNSEARCH_CACHE) to a writable folder with room"]
    assert not [p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock")], "temp files left behind"
