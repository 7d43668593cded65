"""The confirmation runs as summary.json keeps them (tune/experiment/confirmation.py ConfirmRun), from Tune's results
of the stage's run and the state it saved last."""

from __future__ import annotations

from typing import Optional

from tune.confirmation.held_out import held_out_accuracy
from tune.experiment.confirmation import Confirmation, ConfirmRun, Finalist
from tune.experiment.records import ERROR, NOT_STARTED, TERMINATED, UNFINISHED
from tune.experiment.storage import Experiment
from tune.summary import SUMMARY_METRICS, SavedTrial, _clean, _epochs, _train_checkpoint, error_line
from tune.trial import TRIAL_ERROR
from tune.trial_checkpoints import paired


def confirm_run(result, experiment: Experiment, confirm: Experiment, saved: Optional[SavedTrial],
                evaluate: bool) -> ConfirmRun:
    """One run; ``evaluate``: measure its test accuracy (a finished run's last checkpoint)."""
    metrics = result.metrics or {}
    trial_id = _trial_id(result)
    failure = metrics.get(TRIAL_ERROR) or (error_line(result.error) if result.error else None)
    status = saved.status if saved is not None else None
    if failure:
        state = ERROR
    elif status in (None, TERMINATED):
        state = TERMINATED
    else:
        state = UNFINISHED if "epoch" in metrics else NOT_STARTED
    checkpoint = _train_checkpoint(result) or (result.checkpoint.path if result.checkpoint else None)
    if checkpoint is not None and "epoch" in metrics:
        fs = result.checkpoint.filesystem if result.checkpoint else confirm.filesystem()
        checkpoint, metrics = paired(fs, checkpoint, metrics)
    config = result.config or (saved.config if saved is not None else {})
    finished = evaluate and state == TERMINATED and checkpoint
    test = held_out_accuracy(_location(confirm, checkpoint)) if finished else None
    return ConfirmRun(trial_id=trial_id, seed=int(config["seed"]), status=state, epochs=_epochs(result),
                      metrics={key: _clean(metrics[key]) for key in SUMMARY_METRICS if key in metrics},
                      test_acc=test, path=experiment.relative(result.path), checkpoint=experiment.relative(checkpoint),
                      error=failure)


def _location(confirm: Experiment, checkpoint: str) -> str:
    """A checkpoint path as Tune reports it (a path on the run's filesystem) as a location storage reads."""
    if "://" in checkpoint or "://" not in confirm.uri:
        return checkpoint
    return f"{confirm.uri.split('://', 1)[0]}://{checkpoint}"


def with_runs(confirmation: Confirmation, results, experiment: Experiment, confirm: Experiment,
              saved: dict[str, SavedTrial], evaluate: bool) -> Confirmation:
    """``confirmation`` with every run of ``results`` under its finalist (by the run's ``finalist`` config key)."""
    by_finalist: dict[str, list[ConfirmRun]] = {f.trial_id: [] for f in confirmation.finalists}
    for result in results:
        config = result.config or {}
        run = confirm_run(result, experiment, confirm, saved.get(_trial_id(result)), evaluate)
        by_finalist.setdefault(config.get("finalist") or saved[_trial_id(result)].config["finalist"], []).append(run)
    finalists: list[Finalist] = [f.model_copy(update={"runs": sorted(by_finalist[f.trial_id], key=lambda r: r.seed)})
                                 for f in confirmation.finalists]
    return confirmation.model_copy(update={"finalists": finalists})


def _trial_id(result) -> str:
    return (result.metrics or {}).get("trial_id") or result.path.rstrip("/").rsplit("trial_", 1)[-1]
