"""A trained checkpoint as results/ finds and loads it: a checkpoint folder given, or an experiment folder's best
trial's (evaluate, export and the report all start here). The files themselves are the trainer's
(train/checkpoint.py, read_checkpoint)."""

from __future__ import annotations

from pathlib import Path


def has_checkpoint(location: str) -> bool:
    """Whether ``location`` (a path or URI) is a checkpoint folder of this project's trainer."""
    from train.checkpoint import CHECKPOINT_FILE
    from tune.experiment.storage import is_file, join

    return is_file(join(location, CHECKPOINT_FILE))


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder, given one, or an experiment folder (its summary's best checkpoint)."""
    from train.checkpoint import CHECKPOINT_FILE
    from train.config import ConfigError
    from tune.experiment.layout import SUMMARY_FILE
    from tune.experiment.records import Summary

    if has_checkpoint(str(path)):
        return path
    if not (path / SUMMARY_FILE).is_file():
        raise ConfigError(f"{path}: neither a checkpoint folder (no {CHECKPOINT_FILE}) nor an experiment folder "
                          f"with a {SUMMARY_FILE} naming one")
    best = Summary.read(str(path)).best
    if best is None or not best.checkpoint:
        raise ConfigError(f"{path / SUMMARY_FILE}: no best trial with a checkpoint (no trial finished an epoch)")
    checkpoint = path.resolve() / best.checkpoint  # relative to the experiment: a moved copy still evaluates
    if not has_checkpoint(str(checkpoint)):
        raise ConfigError(f"{path}: the best trial's checkpoint {checkpoint} is missing "
                          f"({SUMMARY_FILE} names {best.checkpoint})")
    return checkpoint


def load_checkpoint(folder: Path):
    """(config, model in eval mode with the checkpoint's weights, class names)."""
    from train.checkpoint import CONFIG_FILE, read_checkpoint
    from train.config import parse
    from train.model import build_model

    raw, state = read_checkpoint(folder)
    cfg = parse(raw, source=str(folder / CONFIG_FILE))
    model = build_model(cfg.model, num_classes=len(state["class_names"]))
    model.load_state_dict(state["model"])
    return cfg, model.eval(), state["class_names"]
