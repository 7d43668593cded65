"""What the registry knows of a scheduler, and the rows a scheduler replays for a restored trial."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from tune.space import SearchFile


@dataclass(frozen=True)
class Scheduler:
    """One scheduler (tune/schedulers/)."""

    name: str
    label: str
    """What people call it (the progress display, reports)."""
    create: Callable[["SearchFile"], Any]
    """The Tune scheduler for a search. Its time axis is the trial's "epoch" (not training_iteration): a retried
    multi-worker trial restarts Tune's iteration count at 1 while its TorchTrainer resumes from the checkpoint's
    epoch."""


def result_rows(trial: Any) -> Iterator[dict[str, Any]]:
    """The trial's result.json rows, from where the restored experiment lives now (a moved one too)."""
    # trial.path / trial.storage: where Tune.restore has pointed the trial (Trial is a DeveloperAPI).
    fs = trial.storage.storage_filesystem
    try:
        with fs.open_input_stream(posixpath.join(trial.path, "result.json")) as stream:
            text = stream.read().decode()
    except OSError:
        return
    for line in text.splitlines():
        try:
            yield json.loads(line)
        except ValueError:  # a line cut off by the kill that ended the earlier session
            continue
