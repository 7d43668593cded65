"""The typed files of an experiment folder: summary.json (:class:`Summary`, one :class:`TrialRecord` per
trial), run.json (:class:`RunRecord`), search.yaml (tune.space.SearchFile) and best_config.yaml; each read
and written here and nowhere else.

A folder that is not an experiment, or one written by an earlier version of signsearch (whose files had
other names for the same settings), is an :class:`ExperimentError`: one line saying what and where.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Literal, Optional, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

from infra.config_errors import one_line
from infra.overrides import safe_load
from train.config import ConfigError, TrialConfig
from tune.experiment import layout
from tune.experiment.confirmation import Confirmation
from tune.experiment.storage import Experiment, is_dir, normalise, read_text
from tune.objectives import Objective
from tune.space import SearchFile

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)
Scalar = Union[bool, int, float, str, None]
Number = Union[int, float, None]

TERMINATED, ERROR, UNFINISHED, NOT_STARTED = "TERMINATED", "ERROR", "UNFINISHED", "NOT_STARTED"


class ExperimentError(ConfigError):
    """A folder that cannot be read as an experiment of this version; the message is one line."""


class TrialRecord(BaseModel):
    """One trial in summary.json."""

    model_config = _STRICT
    trial_id: str
    """Tune's trial id; the trial's folder is ``trial_<id>``."""
    status: Literal["TERMINATED", "ERROR", "UNFINISHED", "NOT_STARTED"]
    """TERMINATED: finished, or stopped early by ASHA. ERROR: failed (retries used up, or a configuration, data
    or disk error, never retried). Only in an interrupted search: UNFINISHED, continued by --resume from its last
    checkpoint; NOT_STARTED, sampled but no epoch finished yet, started by --resume."""
    error: Optional[str] = None
    """The failure's one line."""
    error_file: Optional[str] = None
    """The failure's whole text with its traceback (every failed attempt), relative to the experiment folder
    (``trial_<id>/error.txt``); null when the trial did not fail, or failed on a configuration, data or disk
    error (its one line is all there is)."""
    params: dict[str, Scalar] = {}
    """What the searcher sampled, by space key (a dotted path into the trial config)."""
    config: TrialConfig
    """The whole trial config the trial trained (the base config with ``params`` applied)."""
    epochs: int
    """Epochs trained (the loop's own count: right for a retried trial too)."""
    metrics: dict[str, Number] = {}
    """The last report: train.metrics.REPORTED_METRICS, ``latency_ms`` (searches with a latency objective),
    ``epoch``, Tune's ``training_iteration`` and ``time_total_s`` (NaN and infinities as null)."""
    path: Optional[str] = None
    """The trial's folder, relative to the experiment folder."""
    checkpoint: Optional[str] = None
    """Its last checkpoint, relative to the experiment folder (``trial_<id>/checkpoint_000003``, or
    ``train_runs/train_<id>/attempt_<n>/checkpoint_...`` for a multi-worker trial)."""


class Summary(BaseModel):
    """summary.json: the outcome of a search, written when it ends (also when interrupted)."""

    model_config = _STRICT
    experiment: str
    """The search file's experiment name."""
    experiment_dir: str
    """Where the experiment was when the summary was written (paths inside are relative to the folder)."""
    metric: str
    mode: Literal["max", "min"]
    best: Optional[TrialRecord]
    """The trial with the best last-reported metric; null when no trial reported it."""
    trials: list[TrialRecord]
    num_trials: int
    num_errors: int
    total_epochs: int
    """Epochs trained by all trials together."""
    epochs: int
    """trial.epochs: what a trial that ASHA never stops trains."""
    wall_s: float
    """Seconds the search's trials ran: Tune's ``fit()`` of every session (--resume included), without Ray's
    start, data preparation or the summary; a session killed with -9 counts to its last clock tick."""
    interrupted: bool
    """Ctrl-C, SIGTERM or the stall guard stopped it: UNFINISHED and NOT_STARTED trials continue with --resume."""
    stalled: Optional[str] = None
    """The stall guard's line when trials waited ``failure.stall_timeout_s`` for resources with none running
    (tune/watch.py), else null."""
    data_fingerprint: str
    versions: dict[str, str]
    """Versions of the key packages the search ran with."""
    objectives: Optional[list[Objective]] = None
    """A multi-objective search's objectives, in order (``metric``/``mode`` above: the one ASHA used); null for a
    single-objective search."""
    front: Optional[list[str]] = None
    """A multi-objective search's Pareto front: the trial ids of the finished trials no other finished trial
    beats on every objective (Optuna's ``study.best_trials``; ASHA-stopped trials are never on it), best
    first on the first objective; null for a single-objective search."""
    latency: Optional[dict[str, Union[int, float, str]]] = None
    """How latency_ms was measured (batch_size, threads, execution_provider, warmup, repeats, onnxruntime)."""
    confirmation: Optional[Confirmation] = None
    """The confirmation stage (``confirm:`` in the search file): the finalists trained again per seed, the confirmed
    winner; null when the stage is off. ``best`` stays the search's own best trial."""

    def write(self, experiment: Experiment) -> str:
        """Write summary.json (and best_config.yaml when there is a best trial); return summary.json's path."""
        confirmed = self.confirmation.shipped_config() if self.confirmation is not None else None
        if confirmed is not None:  # the confirmed winner, with the seed of the run that ships
            header, config = confirmed
        elif self.best is not None:
            header = (f"# Best trial {self.best.trial_id} of {self.experiment}: {self.metric}="
                      f"{self.best.metrics.get(self.metric)}\n")
            config = self.best.config
        if confirmed is not None or self.best is not None:
            header += f"# Re-run: python train/train_model.py --config {experiment.child(layout.BEST_CONFIG_FILE)}\n"
            experiment.write_text(layout.BEST_CONFIG_FILE, header + yaml.safe_dump(config.to_dict(), sort_keys=False))
        return experiment.write_text(layout.SUMMARY_FILE, self.model_dump_json(indent=2))

    @classmethod
    def read(cls, location: str) -> "Summary":
        """The summary of the experiment at ``location``; :class:`ExperimentError` when there is none."""
        experiment = open_experiment(location)
        return _parse(cls, experiment.child(layout.SUMMARY_FILE), json.loads, "JSON")


def open_experiment(location: str) -> Experiment:
    """The experiment at ``location``, checked to hold a summary.json; else one :class:`ExperimentError` line."""
    location = normalise(location)
    if not is_dir(location):
        raise ExperimentError(f"{location}: no such folder")
    experiment = Experiment.at(location)
    if not experiment.has(layout.SUMMARY_FILE):
        if experiment.has(layout.SEARCH_FILE):
            raise ExperimentError(
                f"{location}: no {layout.SUMMARY_FILE}: the search never finished; continue it with "
                f"python tune/run_search.py --config {experiment.child(layout.SEARCH_FILE)} --resume {location}")
        raise ExperimentError(f"{location}: not an experiment folder (no {layout.SUMMARY_FILE} or "
                              f"{layout.SEARCH_FILE} inside; give the folder run_search.py printed, e.g. "
                              "runs/smoke-<time>)")
    return experiment


def read_search(experiment: Experiment) -> SearchFile:
    """The search.yaml the experiment was searched with."""
    return _parse(SearchFile, experiment.child(layout.SEARCH_FILE), safe_load, "YAML")


def _parse(model: type[BaseModel], location: str, decode, what: str):
    try:
        raw = decode(read_text(location))
    except (ValueError, yaml.YAMLError) as error:
        raise ExperimentError(f"{location}: not valid {what} ({str(error).splitlines()[0]}); cut off while "
                              "written?") from None
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as error:
        raise ExperimentError(f"{location}: not written by this version of signsearch ({one_line(error, model)}); "
                              "experiments of earlier versions cannot be read: search again") from None


CLOCK_S = 5.0
"""How often (seconds) run.json's wall time is brought up to date while a session's trials run: a session
killed with -9 is counted to its last tick, so at most this much of it is lost."""


class RunRecord(BaseModel):
    """``<experiment>/run.json``: what a resumed search checks and adds up."""

    model_config = _STRICT
    data_fingerprint: str
    """Fingerprint of the training data the search started on (train.data.cache)."""
    wall_s: float = 0.0
    """Seconds Tune's ``fit()`` ran in the sessions before this one (up to CLOCK_S short for a killed one)."""
    sessions: int = 0
    """Sessions started: 1 for a search never resumed."""
    confirm_wall_s: float = 0.0
    """Seconds the confirmation stage's ``fit()`` ran over the sessions (not in ``wall_s``, the search's)."""

    @classmethod
    def read(cls, experiment: Experiment) -> Optional["RunRecord"]:
        if not experiment.has(layout.RUN_FILE):
            return None
        return _parse(cls, experiment.child(layout.RUN_FILE), json.loads, "JSON")

    def write(self, experiment: Experiment) -> None:
        experiment.write_text(layout.RUN_FILE, self.model_dump_json(indent=1))

    @contextmanager
    def clock(self, experiment: Experiment, started: float) -> Iterator[None]:
        """Keep run.json's wall time current (every CLOCK_S) while the block runs; add the session at the end."""
        before, stop = self.wall_s, threading.Event()

        def tick() -> None:
            while not stop.wait(CLOCK_S):
                try:
                    now = before + time.monotonic() - started
                    self.model_copy(update={"wall_s": now}).write(experiment)
                except OSError:  # storage briefly unavailable: the next tick or the end writes it
                    pass

        thread = threading.Thread(target=tick, name="run.json clock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.wall_s = before + time.monotonic() - started
            self.write(experiment)
