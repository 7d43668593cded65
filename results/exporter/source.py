"""Which checkpoint an export reads (the one given, or the best trial's of an experiment folder's summary.json), and
the network it holds, rebuilt with timm's exportable layers (:func:`load_for_export`).

summary.json is read through the experiment contract (tune/experiment/records.py): each trial's ``path`` and
``checkpoint`` are relative to the experiment folder, so a copied or moved experiment exports the same.
"""

from __future__ import annotations

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


def _read_summary(experiment: Path) -> Optional[dict[str, Any]]:
    """The experiment's summary (as JSON-ready dicts), None when ``experiment`` holds none."""
    from tune.experiment.layout import SUMMARY_FILE
    from tune.experiment.records import Summary

    if not (experiment / SUMMARY_FILE).is_file():
        return None
    return Summary.read(str(experiment)).model_dump(mode="json")


def locate(path: Path, confirmed_winner: bool = True) -> Source:
    """The checkpoint folder given, or of the experiment folder given its confirmed winner's shipped run (a search with
    a confirmation stage; ``confirmed_winner`` false: as without one), else its best trial's checkpoint."""
    from results.checkpoints import has_checkpoint
    from train.checkpoint import CHECKPOINT_FILE
    from tune.experiment.layout import SEARCH_FILE, SUMMARY_FILE

    path = path.expanduser().absolute()
    if has_checkpoint(str(path)):
        experiment = path.parent.parent  # <experiment>/<trial>/<checkpoint> when it came from a search
        summary = _read_summary(experiment)
        trial = next((entry for entry in (summary or {}).get("trials", [])
                      if entry["path"] and experiment / entry["path"] == path.parent), None)
        source = Source(path, experiment if trial else None, summary if trial else None, trial)
    else:
        summary = _read_summary(path)
        if summary is None:
            raise ExportError(f"{path}: neither a checkpoint folder (no {CHECKPOINT_FILE}) nor an experiment "
                              f"folder with a {SUMMARY_FILE}")
        confirmed = shipped_trial(path, summary) if confirmed_winner else None
        if confirmed is not None:  # the confirmed winner's median-seed run (results/exporter/confirmed.py)
            checkpoint, trial = confirmed
            if not has_checkpoint(str(checkpoint)):
                raise ExportError(f"{path / SUMMARY_FILE}: the confirmed winner's checkpoint {checkpoint} is missing")
            source = Source(checkpoint, path, summary, trial)
            if (path / SEARCH_FILE).is_file():
                source.search_yaml = (path / SEARCH_FILE).read_text()
            return source
        best = summary["best"] or {}
        if not best.get("checkpoint"):
            raise ExportError(f"{path / SUMMARY_FILE}: no finished trial with a checkpoint to export")
        checkpoint = path / best["checkpoint"]
        if not has_checkpoint(str(checkpoint)):
            raise ExportError(f"{path / SUMMARY_FILE}: the best trial's checkpoint {checkpoint} is missing "
                              f"(no {CHECKPOINT_FILE})")
        source = Source(checkpoint, path, summary, best)
    if source.experiment is not None and (source.experiment / SEARCH_FILE).is_file():
        source.search_yaml = (source.experiment / SEARCH_FILE).read_text()
    return source


def shipped_trial(path: Path, summary: dict[str, Any]) -> Optional[tuple[Path, dict[str, Any]]]:
    """(checkpoint, trial entry) of the run to ship by default; None for a search without a confirmation stage.
    ExportError while the stage is unfinished."""
    confirmation = summary.get("confirmation")
    if not confirmation:
        return None
    if confirmation["status"] != "finished" or not confirmation.get("shipped"):
        raise ExportError(f"{path}: its confirmation stage is unfinished, so the confirmed winner is not known; "
                          f"continue it with python tune/run_search.py --config {path / 'search.yaml'} --resume {path} "
                          "(or export the search's own pick with --pick best)")
    run = confirmation["shipped"]
    finalist = next(f for f in confirmation["finalists"] if f["trial_id"] == confirmation["winner"])
    if not run.get("checkpoint"):
        raise ExportError(f"{path}: the confirmed winner's run {run['trial_id']} has no checkpoint")
    trial = {**run, "params": finalist["params"], "confirms": finalist["trial_id"]}
    return path / run["checkpoint"], trial



def load_for_export(checkpoint: Path, data_root: Optional[str]):
    """(config, model in eval mode built with timm's exportable layers, checkpoint state)."""
    from train.checkpoint import CONFIG_FILE, read_checkpoint
    from train.config import ConfigError, parse
    from train.model import build_exportable

    try:
        raw, state = read_checkpoint(checkpoint)
    except ConfigError as error:
        raise ExportError(str(error)) from None
    if data_root:
        raw["data"]["root"] = str(Path(data_root).expanduser().absolute())
    cfg = parse(raw, source=str(checkpoint / CONFIG_FILE))
    model = build_exportable(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    return cfg, model.eval(), state
