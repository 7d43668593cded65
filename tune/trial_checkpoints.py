"""Which of a trial's checkpoints goes with which epoch, before a resume and in the summary.

A 1-worker trial's checkpoints are Tune's (``trial_<id>/checkpoint_<n>/``). A multi-worker trial's weights are in
Ray Train's checkpoints (whose own manager writes its state before it deletes an old one); Tune holds a pointer per
epoch for it (tune/train_relay.py: ``metrics.json`` alone, Train's checkpoint path in it). Tune keeps one
(``CheckpointConfig(num_to_keep=1)``) and does three things per epoch, in this order: the trial writes the new
checkpoint folder to storage; the driver records the epoch's row and registers the checkpoint (deleting the
previous one); then it saves its experiment state, with result.json, to storage: that is what ``--resume`` reads.
A driver killed between two of them leaves a saved state behind the trial's folder:

- the state names a checkpoint that was already deleted: Tune's restore fails ("does not exist on storage
  anymore") and a finished trial would end as ERROR;
- the state names an older checkpoint than the newest whole one: the restored trial would train an epoch again.

:func:`align_for_resume` puts the newest whole checkpoint where the state expects one, before ``Tuner.restore``
reads it. The restored run reports that checkpoint's epoch again first (train/loop.py), so an epoch whose row
never reached storage gets it back; nothing is trained twice and nothing after the checkpoint is lost but the
epoch in progress. Every checkpoint folder holds its epoch's reported numbers (``metrics.json``,
train/checkpoint.py), so no weights are read to know its epoch.
"""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow.fs

from train.checkpoint import CHECKPOINT_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE

PREFIX = "checkpoint_"
ATTEMPT = "attempt_"
"""Prefix of a multi-worker trial's Ray Train runs, one per start of the trial (:func:`train_start`)."""
TRAIN_CHECKPOINT = "checkpoint_path"
"""Key of a multi-worker trial's reports (and pointers) holding that epoch's Ray Train checkpoint (the key Ray's
``TuneReportCallback`` uses, so searches run before the pointers read the same)."""


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint folder of a trial and the numbers its epoch reported."""

    path: str
    """Its path on ``fs`` (a filesystem path, not a URI)."""
    metrics: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.metrics["epoch"])


def _read(fs: pyarrow.fs.FileSystem, path: str) -> Optional[bytes]:
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except (OSError, pyarrow.ArrowException):
        return None


def _read_json(fs: pyarrow.fs.FileSystem, path: str) -> Any:
    """The file's JSON; None when it is missing or cut off (by a kill while the folder was being written)."""
    text = _read(fs, path)
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None


def saved_checkpoints(fs: pyarrow.fs.FileSystem, trial_dir: str) -> list[SavedCheckpoint]:
    """The trial's checkpoint folders that say which epoch they hold, oldest epoch first."""
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(trial_dir, allow_not_found=True))
    except (OSError, pyarrow.ArrowException):
        return []
    found = []
    for info in infos:
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith(PREFIX):
            continue
        metrics = _read_json(fs, posixpath.join(info.path, METRICS_FILE))
        if isinstance(metrics, dict) and isinstance(metrics.get("epoch"), int):
            found.append(SavedCheckpoint(info.path, metrics))
    return sorted(found, key=lambda saved: (saved.epoch, saved.path))


def is_whole(fs: pyarrow.fs.FileSystem, checkpoint: SavedCheckpoint) -> bool:
    """Its files are there and the weights pass their zip CRC checks (a folder cut off while copied is not); a
    pointer is whole once its metrics.json reads (it is its only file)."""
    if TRAIN_CHECKPOINT in checkpoint.metrics:
        return True
    data = _read(fs, posixpath.join(checkpoint.path, CHECKPOINT_FILE))
    if data is None or fs.get_file_info(posixpath.join(checkpoint.path, CONFIG_FILE)).type != pyarrow.fs.FileType.File:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def resume_point(fs: pyarrow.fs.FileSystem, trial_dir: str) -> Optional[SavedCheckpoint]:
    """The newest whole checkpoint: where the trial continues."""
    for candidate in reversed(saved_checkpoints(fs, trial_dir)):
        if is_whole(fs, candidate):
            return candidate
    return None


def _filesystem(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    return pyarrow.fs.FileSystem.from_uri(uri) if "://" in uri else (pyarrow.fs.LocalFileSystem(), uri)


def earlier_rows(checkpoint_uri: str) -> list[dict[str, Any]]:
    """The rows of the epochs before a Train checkpoint's own (its history.json, train/checkpoint.py)."""
    fs, path = _filesystem(checkpoint_uri)
    return (_read_json(fs, posixpath.join(path, HISTORY_FILE)) or [])[:-1]


def train_start(runs_uri: str) -> tuple[str, Optional[str]]:
    """(name of the next Ray Train run, the checkpoint it starts from) for a multi-worker trial whose Train runs live
    in ``runs_uri`` (``train_runs/train_<trial id>``; a run per start of the trial: ``attempt_<n>``).

    Train's own resume reads its run's ``checkpoint_manager_snapshot.json``, which it writes after the checkpoint
    folder: a driver killed in between left a snapshot an epoch (or all) behind, and every restore trained those
    epochs again (found by the crash matrix). So each start of the trial is a new run, started from the newest whole
    checkpoint of all earlier ones (and of a run written before attempts, in ``runs_uri`` itself).
    """
    fs, root = _filesystem(runs_uri)
    try:
        attempts = [info for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
                    if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(ATTEMPT)]
    except (OSError, pyarrow.ArrowException):
        attempts = []
    candidates = [point for folder in [root, *(info.path for info in attempts)]
                  if (point := resume_point(fs, folder)) is not None]
    newest = max(candidates, key=lambda saved: (saved.epoch, saved.path), default=None)
    start = None
    if newest is not None:
        start = runs_uri.rstrip("/") + "/" + posixpath.relpath(newest.path, root)
    return f"{ATTEMPT}{len(attempts)}", start


def align_trial(fs: pyarrow.fs.FileSystem, trial_dir: str, expected: str) -> Optional[str]:
    """Make ``expected`` (the checkpoint path the saved state names) hold the trial's resume point; drop the
    folders after it. Returns a line saying what moved, or None when the state was already right."""
    target = resume_point(fs, trial_dir)
    if target is None:
        return None
    moved = target.path != expected
    if moved:
        if fs.get_file_info(expected).type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(expected)
        fs.move(target.path, expected)
    for later in fs.get_file_info(pyarrow.fs.FileSelector(trial_dir)):
        if later.type == pyarrow.fs.FileType.Directory and later.base_name.startswith(PREFIX) \
                and later.base_name > posixpath.basename(expected):
            fs.delete_dir(later.path)  # not whole: the epoch in progress, trained again where Tune writes next
    if not moved:
        return None
    return (f"{posixpath.basename(trial_dir)}: continues from epoch {target.epoch} "
            f"({posixpath.basename(target.path)} -> {posixpath.basename(expected)})")


def align_for_resume(experiment_uri: str) -> list[str]:
    """Before ``Tuner.restore``: every unfinished trial's expected checkpoint holds its resume point
    (see the module docstring). Returns a line per trial that moved."""
    from ray.tune import ExperimentAnalysis

    lines = []
    for trial in ExperimentAnalysis(experiment_uri).trials:
        checkpoint = trial.checkpoint  # Tune's latest registered checkpoint, as its saved state names it
        if trial.status in ("TERMINATED", "ERROR") or checkpoint is None:
            continue
        line = align_trial(checkpoint.filesystem, posixpath.dirname(checkpoint.path), checkpoint.path)
        if line:
            lines.append(line)
    return lines


def paired(fs: pyarrow.fs.FileSystem, checkpoint_path: str, metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(checkpoint, metrics) of one epoch for a trial's summary row: the checkpoint of the last reported epoch if
    it was written (an interrupted search may have registered only the one before), else the registered one with
    its own epoch's numbers. ``checkpoint_path`` is the registered checkpoint, ``metrics`` the last report."""
    epoch = metrics.get("epoch")
    own = _read_json(fs, posixpath.join(checkpoint_path, METRICS_FILE))
    if own is None and fs.get_file_info(checkpoint_path).type == pyarrow.fs.FileType.NotFound:
        # Deleted after a newer one was committed whose report never reached the rows (a multi-worker trial's Ray
        # Train checkpoint, named by the last row): the newest whole one, with its own epoch's numbers.
        newest = resume_point(fs, posixpath.dirname(checkpoint_path))
        return (newest.path, {**metrics, **newest.metrics}) if newest else (checkpoint_path, metrics)
    if not isinstance(own, dict) or own.get("epoch") == epoch:
        # The common case (no weights read, which on object storage would download them): the registered checkpoint
        # is the last epoch's, or predates metrics.json.
        return checkpoint_path, metrics
    same = [saved for saved in saved_checkpoints(fs, posixpath.dirname(checkpoint_path))
            if saved.epoch == epoch and is_whole(fs, saved)]
    if same:
        return same[-1].path, metrics
    return checkpoint_path, {**metrics, **own}
