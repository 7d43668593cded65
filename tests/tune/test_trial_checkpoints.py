"""Which checkpoint a trial continues from after a kill, and which one its summary row names: real checkpoints of
the loop, laid out as Tune leaves a trial folder at each moment of an epoch's bookkeeping."""

from __future__ import annotations

import json
import shutil

import pyarrow.fs
import pytest

from train.checkpoint import CHECKPOINT_FILE
from train.config import parse
from train.loop import run_local
from tune.trial_checkpoints import TRAIN_CHECKPOINT, align_trial, earlier_rows, paired, resume_point, train_start

FS = pyarrow.fs.LocalFileSystem()


@pytest.fixture(scope="module")
def epochs(tiny_data, tmp_path_factory):
    """Checkpoint folders of epochs 1-3 of one real run (run_local names them checkpoint_0001..3)."""
    root = tmp_path_factory.mktemp("epochs")
    run_local(parse({"data": tiny_data, "model": {"name": "small_cnn", "cnn": {"blocks": 2, "width": 8}},
                     "epochs": 3, "workers": {"threads_per_worker": 1}}), checkpoint_root=root)
    return root


def _trial(tmp_path, epochs, checkpoints: list[int], rows: list[int]):
    """A trial folder: Tune's checkpoint_00000<i> holding epoch i+1 for each given epoch, result.json rows."""
    trial = tmp_path / "trial_x"
    trial.mkdir()
    for epoch in checkpoints:
        shutil.copytree(epochs / f"checkpoint_{epoch:04d}", trial / f"checkpoint_{epoch - 1:06d}")
    metrics = {epoch: json.loads((epochs / f"checkpoint_{epoch:04d}" / "metrics.json").read_text()) for epoch in rows}
    (trial / "result.json").write_text("".join(json.dumps(metrics[e]) + "\n" for e in rows))
    return trial


def _epoch_in(folder) -> int:
    return json.loads((folder / "metrics.json").read_text())["epoch"]


def test_the_state_names_a_checkpoint_tune_already_deleted(tmp_path, epochs):
    """Killed after Tune registered epoch 3's checkpoint (deleting epoch 2's), before it saved its state, which still
    names checkpoint_000001: the trial continues from epoch 3, where the state looks for it."""
    trial = _trial(tmp_path, epochs, checkpoints=[3], rows=[1, 2, 3])
    line = align_trial(FS, str(trial), str(trial / "checkpoint_000001"))
    assert line == "trial_x: continues from epoch 3 (checkpoint_000002 -> checkpoint_000001)"
    assert [p.name for p in sorted(trial.glob("checkpoint_*"))] == ["checkpoint_000001"]
    assert _epoch_in(trial / "checkpoint_000001") == 3


def test_a_written_epoch_is_not_trained_again(tmp_path, epochs):
    """Killed after epoch 2's checkpoint was written, before Tune registered it and saved its state (even before
    the epoch's row reached storage): the state names epoch 1's checkpoint, but the trial continues after epoch 2
    (the restored run reports epoch 2 again, so its row comes back)."""
    trial = _trial(tmp_path, epochs, checkpoints=[1, 2], rows=[1])
    align_trial(FS, str(trial), str(trial / "checkpoint_000000"))
    assert [p.name for p in sorted(trial.glob("checkpoint_*"))] == ["checkpoint_000000"]
    assert _epoch_in(trial / "checkpoint_000000") == 2


def test_a_right_state_is_left_alone(tmp_path, epochs):
    trial = _trial(tmp_path, epochs, checkpoints=[2], rows=[1, 2])
    assert resume_point(FS, str(trial)).epoch == 2
    assert align_trial(FS, str(trial), str(trial / "checkpoint_000001")) is None


def test_a_cut_off_checkpoint_is_never_the_resume_point_and_goes(tmp_path, epochs):
    """The epoch in progress: its folder is cut off (or lacks a file); the trial continues after epoch 2 and the
    folder after the one the state expects is removed (Tune writes its next checkpoint there)."""
    trial = _trial(tmp_path, epochs, checkpoints=[1, 2, 3], rows=[1, 2, 3])
    weights = trial / "checkpoint_000002" / CHECKPOINT_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    assert resume_point(FS, str(trial)).epoch == 2
    (trial / "checkpoint_000001" / "trial_config.json").unlink()
    assert resume_point(FS, str(trial)).epoch == 1
    align_trial(FS, str(trial), str(trial / "checkpoint_000000"))
    assert [p.name for p in sorted(trial.glob("checkpoint_*"))] == ["checkpoint_000000"]


def test_a_summary_row_names_the_checkpoint_of_its_own_epoch(tmp_path, epochs):
    """An interrupted search: Tune's state registered epoch 2's checkpoint, the last result is epoch 3's and its
    checkpoint exists: the row names epoch 3's. With only epoch 2's on disk, the row takes epoch 2's numbers."""
    trial = _trial(tmp_path, epochs, checkpoints=[2, 3], rows=[1, 2, 3])
    last = json.loads((trial / "checkpoint_000002" / "metrics.json").read_text())
    checkpoint, metrics = paired(FS, str(trial / "checkpoint_000001"), {**last, "training_iteration": 3})
    assert checkpoint == str(trial / "checkpoint_000002") and metrics["epoch"] == 3
    shutil.rmtree(trial / "checkpoint_000002")
    checkpoint, metrics = paired(FS, str(trial / "checkpoint_000001"), {**last, "training_iteration": 3})
    assert checkpoint == str(trial / "checkpoint_000001") and metrics["epoch"] == 2
    assert metrics["val_acc"] == json.loads((trial / "checkpoint_000001" / "metrics.json").read_text())["val_acc"]


def _pointers(tmp_path, epochs, pointers: list[int], train: list[int]):
    """A multi-worker trial: Ray Train's run folder with the given epochs' checkpoints (named as Train names them),
    and Tune's trial folder with a pointer (tune/train_relay.py: metrics.json alone) per given epoch."""
    run = tmp_path / "train_x"
    trial = tmp_path / "trial_x"
    for epoch in train:
        shutil.copytree(epochs / f"checkpoint_{epoch:04d}", run / f"checkpoint_2026-12-07_10-00-0{epoch}.000000")
    for epoch in pointers:
        metrics = json.loads((epochs / f"checkpoint_{epoch:04d}" / "metrics.json").read_text())
        metrics[TRAIN_CHECKPOINT] = str(run / f"checkpoint_2026-12-07_10-00-0{epoch}.000000")
        (trial / f"checkpoint_{epoch - 1:06d}").mkdir(parents=True)
        (trial / f"checkpoint_{epoch - 1:06d}" / "metrics.json").write_text(json.dumps(metrics))
    return run, trial


def test_a_pointer_tune_already_deleted_is_put_back(tmp_path, epochs):
    """A 2-worker trial killed after Tune registered epoch 2's pointer (deleting epoch 1's), before it saved its state:
    the state's path holds epoch 2's pointer again, so Tune's restore finds it (Train resumes from its own)."""
    _, trial = _pointers(tmp_path, epochs, pointers=[2], train=[2])
    line = align_trial(FS, str(trial), str(trial / "checkpoint_000000"))
    assert line == "trial_x: continues from epoch 2 (checkpoint_000001 -> checkpoint_000000)"
    assert _epoch_in(trial / "checkpoint_000000") == 2


def test_a_summary_row_whose_train_checkpoint_was_replaced(tmp_path, epochs):
    """The last row names epoch 2's Train checkpoint, which Train deleted after committing epoch 3's (whose report
    never reached the rows): the row names epoch 3's checkpoint, with its numbers."""
    run, _ = _pointers(tmp_path, epochs, pointers=[2], train=[3])
    last = json.loads((epochs / "checkpoint_0002" / "metrics.json").read_text())
    checkpoint, metrics = paired(FS, str(run / "checkpoint_2026-12-07_10-00-02.000000"), last)
    assert checkpoint == str(run / "checkpoint_2026-12-07_10-00-03.000000") and metrics["epoch"] == 3


def test_a_restarted_multi_worker_trial_starts_a_new_run_from_the_newest_whole_checkpoint(tmp_path, epochs):
    """Ray Train's snapshot of a run lags its checkpoint folders (a kill in between): the next start is a new run
    (attempt_<n>) from the newest whole checkpoint of every earlier run, one written before attempts included."""
    runs = tmp_path / "train_x"
    assert train_start(str(runs)) == ("attempt_0", None)  # the trial's first start
    shutil.copytree(epochs / "checkpoint_0001", runs / "checkpoint_2026-12-07_10-00-01.000000")  # before attempts
    shutil.copytree(epochs / "checkpoint_0002", runs / "attempt_0" / "checkpoint_2026-12-07_10-00-02.000000")
    shutil.copytree(epochs / "checkpoint_0003", runs / "attempt_1" / "checkpoint_2026-12-07_10-00-03.000000")
    weights = runs / "attempt_1" / "checkpoint_2026-12-07_10-00-03.000000" / CHECKPOINT_FILE
    weights.write_bytes(weights.read_bytes()[:1000])  # cut off by the kill: not whole
    name, start = train_start(str(runs))
    assert name == "attempt_2" and start == str(runs / "attempt_0" / "checkpoint_2026-12-07_10-00-02.000000")
    assert train_start(f"file://{runs}")[1] == f"file://{runs}/attempt_0/checkpoint_2026-12-07_10-00-02.000000"


def test_a_checkpoint_keeps_the_rows_of_every_epoch_before_it(epochs):
    """A multi-worker trial Tune starts over gets a new result.json while its Train run goes on: the rows of the
    epochs before the checkpoint it continues from are reported again from the checkpoint's history."""
    rows = earlier_rows(str(epochs / "checkpoint_0003"))
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[1] == json.loads((epochs / "checkpoint_0002" / "metrics.json").read_text())
    shutil.copytree(epochs / "checkpoint_0003", epochs.parent / "before-histories")
    (epochs.parent / "before-histories" / "history.json").unlink()  # a checkpoint written before histories
    assert earlier_rows(str(epochs.parent / "before-histories")) == []
