"""Experiment folders as a finished (or interrupted) search leaves them, without training anything: search.yaml and
summary.json written by the experiment contract's own writers (tune/experiment/: SearchFile.dump, Summary.write),
and each trial's result.json rows in the shape Tune writes them (the metric, epoch, training_iteration,
time_total_s, timestamp: what results/report/data.py reads). For compare tests over many searches per engine, where
running 6 real searches would take minutes (tests/helpers/searched.py runs the one real search the others share)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO

ENGINES = {"tpe+asha": [], "random+none": ["searcher.algorithm=random", "budget.early_stopping=false"],
           "wandb_bayes+wandb_hyperband": ["searcher.algorithm=wandb_bayes", "budget.scheduler=wandb_hyperband"]}


def recorded_search(folder: Path, engine: str, curves: list[list[float]], *, interrupted: bool = False,
                    num_samples: int | None = None) -> Path:
    """An experiment at ``folder`` searched by ``engine`` (a key of ENGINES): one trial per curve (val_acc per epoch;
    trial i starts 10 s after trial i-1, one epoch takes 2 s). ``interrupted``: the last trial is UNFINISHED and the
    summary says interrupted; ``num_samples``: budget.num_samples (default: the trials)."""
    from tune.experiment.layout import RESULT_FILE, SEARCH_FILE, trial_dirname
    from tune.experiment.records import Summary, TrialRecord
    from tune.experiment.storage import Experiment
    from tune.space import load_search_file

    epochs = max(len(curve) for curve in curves)
    search = load_search_file(REPO / "search_spaces" / "smoke.yaml", [
        f"experiment={folder.name}", f"trial.epochs={epochs}", f"budget.num_samples={num_samples or len(curves)}",
        f"trial.data.root={folder.parent / 'signs'}", *ENGINES[engine]])
    experiment = Experiment.at(str(folder))
    folder.mkdir(parents=True)
    experiment.write_text(SEARCH_FILE, search.dump())
    records = []
    for i, curve in enumerate(curves):
        trial_id = f"{i:05d}"
        trial = folder / trial_dirname(trial_id)
        trial.mkdir()
        start = 1_000_000 + 10 * i
        rows = [{"val_acc": value, "epoch": e, "training_iteration": e, "time_total_s": 2.0 * e,
                 "timestamp": start + 2 * e} for e, value in enumerate(curve, start=1)]
        (trial / RESULT_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
        last = interrupted and i == len(curves) - 1
        records.append(TrialRecord(trial_id=trial_id, status="UNFINISHED" if last else "TERMINATED", params={},
                                   config=search.trial, epochs=len(curve), metrics={"val_acc": curve[-1]},
                                   path=trial.name, checkpoint=f"{trial.name}/checkpoint_{len(curve) - 1:06d}"))
    best = max(records, key=lambda r: r.metrics["val_acc"])
    Summary(experiment=folder.name, experiment_dir=str(folder), metric="val_acc", mode="max", best=best,
            trials=records, num_trials=len(records), num_errors=0, total_epochs=sum(map(len, curves)), epochs=epochs,
            wall_s=float(sum(map(len, curves))), interrupted=interrupted, data_fingerprint="f" * 64,
            versions={}).write(experiment)
    return folder
