"""Checkpoints are trusted only whole: one written short to storage, or cut off before a resume, is one line."""

from __future__ import annotations

import errno

import pytest
from ray.train import Checkpoint

from train.checkpoint import CHECKPOINT_FILE
from train.config import parse
from train.data import DataError
from train.loop import run_local
from train.session import check_complete, check_persisted


@pytest.fixture(scope="module")
def checkpoint(tiny_data, tmp_path_factory):
    """A real epoch-1 checkpoint of the loop."""
    root = tmp_path_factory.mktemp("checkpoints")
    run_local(parse({"data": tiny_data, "model": {"name": "small_cnn", "cnn": {"blocks": 2, "width": 8}},
                     "epochs": 1, "workers": {"threads_per_worker": 1}}), checkpoint_root=root)
    return root / "checkpoint_0001"


def test_a_whole_checkpoint_passes_and_a_cut_off_one_is_one_line(checkpoint, tmp_path):
    check_complete(checkpoint, str(checkpoint))
    cut = tmp_path / "cut"
    cut.mkdir()
    data = (checkpoint / CHECKPOINT_FILE).read_bytes()
    (cut / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])  # as a full disk leaves it
    with pytest.raises(DataError) as error:
        check_complete(cut, "runs/smoke-1/trial_1/checkpoint_000002")
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        f"checkpoint runs/smoke-1/trial_1/checkpoint_000002: {CHECKPOINT_FILE} is cut off or corrupt (")
    (cut / CHECKPOINT_FILE).write_bytes(b"")  # the 0-byte state.pt of a storage that was full
    with pytest.raises(DataError):
        check_complete(cut, str(cut))


def test_a_checkpoint_written_short_to_storage_is_a_disk_error(checkpoint):
    sizes = {path.name: path.stat().st_size for path in checkpoint.iterdir()}
    check_persisted(Checkpoint.from_directory(checkpoint), sizes)
    with pytest.raises(OSError) as error:
        check_persisted(Checkpoint.from_directory(checkpoint), {**sizes, CHECKPOINT_FILE: sizes[CHECKPOINT_FILE] + 1})
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(checkpoint)
    assert "reached storage short" in error.value.strerror

