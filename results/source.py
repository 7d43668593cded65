"""Which checkpoint an export reads: the one given, or the best trial's of an experiment folder's summary.json.

summary.json (tune/summary.py) names each trial's ``path`` and ``checkpoint`` relative to the experiment folder;
older summaries hold absolute paths, which are used as they are, or re-anchored on the folder given when the
experiment was copied or moved since (``ray rsync-down`` from a cluster, say).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


class ExportError(ValueError):
    """Bad input to the export (not a checkpoint, missing files): one line, exit 2."""


@dataclass
class Source:
    """The checkpoint to export and, when known, the search it came from."""

    checkpoint: Path
    experiment: Optional[Path] = None
    summary: Optional[dict[str, Any]] = None
    trial: Optional[dict[str, Any]] = None
    """The trial's summary.json entry."""
    search_yaml: Optional[str] = None
    """The experiment's search.yaml (the resolved search file), as text."""


def _resolve(experiment: Path, summary: dict[str, Any], raw: str) -> Path:
    """A summary path: relative ones are under the experiment; absolute ones of a moved experiment are re-anchored."""
    path = Path(raw)
    if not path.is_absolute():
        return experiment / path
    old_root = summary.get("experiment_dir")
    if not path.exists() and old_root and not str(old_root).startswith(("s3://", "gs://")):
        with contextlib.suppress(ValueError):
            return experiment / path.relative_to(old_root)  # copied down from the cluster, say
    return path


def _read_summary(experiment: Path) -> Optional[dict[str, Any]]:
    path = experiment / "summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ExportError(f"{path}: unreadable JSON ({error})") from None


def locate(path: Path) -> Source:
    """The checkpoint folder given, or the best trial's checkpoint of the experiment folder given."""
    from train.loop import CHECKPOINT_FILE

    path = path.expanduser().absolute()
    if (path / CHECKPOINT_FILE).is_file():
        experiment = path.parent.parent  # <experiment>/<trial>/<checkpoint> when it came from a search
        summary = _read_summary(experiment)
        trial = None
        for entry in (summary or {}).get("trials", []):
            if entry.get("path") and _resolve(experiment, summary, entry["path"]) == path.parent:
                trial = entry
        source = Source(path, experiment if trial else None, summary if trial else None, trial)
    else:
        summary = _read_summary(path)
        if summary is None:
            raise ExportError(f"{path}: neither a checkpoint folder (no {CHECKPOINT_FILE}) nor an experiment "
                              f"folder with a summary.json")
        best = summary.get("best") or {}
        if not best.get("checkpoint"):
            raise ExportError(f"{path / 'summary.json'}: no finished trial with a checkpoint to export")
        checkpoint = _resolve(path, summary, best["checkpoint"])
        if not (checkpoint / CHECKPOINT_FILE).is_file():
            raise ExportError(f"{path / 'summary.json'}: the best trial's checkpoint {checkpoint} is missing "
                              f"(no {CHECKPOINT_FILE})")
        source = Source(checkpoint, path, summary, best)
    if source.experiment is not None and (source.experiment / "search.yaml").is_file():
        source.search_yaml = (source.experiment / "search.yaml").read_text()
    return source
