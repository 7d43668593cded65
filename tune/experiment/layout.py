"""The names of everything in an experiment folder, ``<storage>/<experiment>-<time>/``.

::

    search.yaml          the resolved search file (tune.space.SearchFile)      written at the start
    run.json             data fingerprint, wall time over sessions (RunRecord)  kept current while it runs
    study.db             the Optuna study (SQLite; for URI storage, in ./runs/<experiment>/)
    latency.json         measured latency_ms per architecture (multi-objective searches; tune/latency.py)
    trial_<id>/          one Tune trial: result.json (a row per epoch), checkpoint_<n>/, error.txt (its failures)
    train_runs/train_<id>/checkpoint_<n>/   a multi-worker trial's Ray Train checkpoints
    summary.json         every trial and the best one (Summary)                 written at the end
    confirm/             the confirmation stage's Tune run: confirm/trial_<id>/ per finalist and seed, its own
                         experiment state (Tuner.restore), confirm/train_runs/ (tune/confirmation/)
    stalled.txt          the stall guard's line, read and removed by the driver (tune/watch.py)
    best_config.yaml     the best trial's trial config, for train/train_model.py
    report/              results/analyze.py's report
    wandb/               W&B's offline runs
"""

from __future__ import annotations

from pathlib import Path

SEARCH_FILE = "search.yaml"
RUN_FILE = "run.json"
STUDY_FILE = "study.db"
LATENCY_FILE = "latency.json"
"""A multi-objective search's latency table: architecture key -> latency_ms and how it was measured."""
SUMMARY_FILE = "summary.json"
BEST_CONFIG_FILE = "best_config.yaml"
ERROR_FILE = "error.txt"
"""A failed trial's error text (every failure, with tracebacks) in its trial folder: Tune's own name for it."""
STALL_FILE = "stalled.txt"
"""The stall guard's one line: a resumed search's guard is unpickled by Tune from tuner.pkl, out of the driver's
reach, so it leaves its verdict where the driver reads it after fit()."""
RESULT_FILE = "result.json"
"""Tune's per-trial log: one JSON row per report."""
TRAIN_RUNS = "train_runs"
"""Folder of the multi-worker trials' TorchTrainer runs (their checkpoints)."""
CONFIRM_DIR = "confirm"
"""The confirmation stage's Tune run (tune/confirmation/stage.py): a Tune experiment of its own inside this one."""
REPORT_DIR = "report"
WANDB_DIR = "wandb"


def trial_dirname(trial_id: str) -> str:
    """A trial's folder in the experiment (Tune's trial_dirname_creator)."""
    return f"trial_{trial_id}"


def error_file(trial_id: str) -> str:
    """A failed trial's error text, relative to the experiment folder (``trial_<id>/error.txt``)."""
    return f"{trial_dirname(trial_id)}/{ERROR_FILE}"


def study_url(folder: Path) -> str:
    """Optuna storage URL of the study in experiment ``folder`` (an absolute path, as optuna-dashboard takes it)."""
    return f"sqlite:///{(Path(folder).resolve() / STUDY_FILE).as_posix()}"
