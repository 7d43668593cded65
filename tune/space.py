"""The search-space YAML: its schema, its checks, and what it turns into (base config + Optuna space).

A file holds the experiment name, the trial config every trial starts from (``trial:``, the very
schema of a trial config file, train.config.TrialConfig), the space to search (dotted paths into
``trial``), the budget, the searcher settings and the metric. Every section is typed with
``extra="forbid"``; :func:`load_search_file` reports any problem as one line naming the file, the key as
written in it and what is allowed. The parameters' distributions and ``when`` conditions are tune/distributions.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, Optional, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infra.config_errors import one_line
from infra.overrides import apply_overrides, load_yaml, set_dotted
from train.config import ConfigError, TrialConfig, absolute_paths, parse
from train.metrics import REPORTED_METRICS
from tune.confirm_settings import Confirm
from tune.distributions import Param, Scalar
from tune.engines import ENGINES
from tune.objectives import Latency, Objective, check_objectives, scheduled
from tune.schedulers import NO_EARLY_STOPPING, SCHEDULERS
from tune.space_checks import check_searched_not_fixed, check_space

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Budget(BaseModel):
    """How many trials, and how ASHA stops them (its time axis is the trial's epoch; max_t is trial.epochs)."""

    model_config = _STRICT
    num_samples: int = Field(16, ge=1)
    """Trials to run in total."""
    grace_period: int = Field(1, ge=1)
    """Epochs every trial gets before ASHA may stop it."""
    reduction_factor: int = Field(3, ge=2)
    """ASHA keeps the top 1/reduction_factor of trials at each rung."""
    early_stopping: bool = True
    """ASHA early stopping; false runs every trial to trial.epochs (a baseline for comparisons)."""
    scheduler: Literal[tuple(name for name in SCHEDULERS if name != NO_EARLY_STOPPING)] = "asha"  # type: ignore[valid-type]
    """Who stops trials early (when early_stopping is on; tune/schedulers/): asha (Ray Tune's ASHA), or
    wandb_hyperband (W&B Sweeps' own hyperband, sweeps.stop_runs, with min_iter = grace_period and eta =
    reduction_factor)."""


class SearcherConfig(BaseModel):
    """The ``searcher:`` section: which engine proposes trials (tune/engines/) and its settings; every engine's
    trials are recorded in the Optuna study kept in <experiment>/study.db (tune/engines/study.py)."""

    model_config = _STRICT
    seed: int = 0
    """Seed of the TPE sampler (and of random search); a resumed search continues from seed + trials so far."""
    startup_trials: int = Field(4, ge=1)
    """Random trials before TPE starts modelling; for nsga2, the population size (the first generation is random)."""
    algorithm: Literal[ENGINES] = "tpe"  # type: ignore[valid-type]
    """tpe: Optuna TPE (multi-objective TPE with ``objectives``); random: Optuna's random sampler (the baseline);
    nsga2: Optuna's NSGA-II (multi-objective searches only); wandb_bayes / wandb_random: W&B Sweeps' own engine
    (sweeps.next_run, method bayes / random; single-objective) proposing every trial, still recorded in the Optuna
    study (tune/engines/)."""
    warm_start: list[dict[str, Scalar]] = []
    """Points to evaluate first, keyed like the space (e.g. {optim.lr: 0.001})."""
    multivariate: bool = True
    """TPE models the parameters jointly (one density over all of them) instead of one at a time."""
    group: Union[bool, Literal["auto"]] = "auto"
    """TPE models each set of parameters that are sampled together separately (needs multivariate);
    "auto": on when the space has `when` conditions, whose parameters are absent from some trials."""
    constant_liar: Union[bool, Literal["auto"]] = "auto"
    """TPE counts running trials as bad ones when it proposes, so trials started together differ;
    "auto": on when more than one trial runs at a time."""

    @model_validator(mode="after")
    def _group_needs_multivariate(self):
        if self.group is True and not self.multivariate:
            raise ValueError("group: true needs multivariate: true")
        return self


Searcher = SearcherConfig
"""The name searches pickled (tuner.pkl: the searcher's settings) before the rename; --resume of one unpickles it."""


def _as_yaml(value: Any) -> str:
    return yaml.safe_dump(value).split("\n")[0]  # true, not Python's True


TPE_ONLY = ("multivariate", "group", "constant_liar")
"""TPE settings refused under a W&B engine unless at their defaults: W&B's engine proposes by itself, and a
modelling choice someone made would be silently dropped. No shipped space sets these, so one switched to a W&B engine
with --set still loads; startup_trials, which every shipped space sets for its TPE, is a warning (ignored_settings)."""


class Wandb(BaseModel):
    """The ``wandb:`` section: every trial a W&B run, logged from the search's driver (tune/wandb_logging.py)."""

    model_config = _STRICT
    enabled: bool = True
    """Log every trial as a W&B run; offline (local files) when WANDB_API_KEY is not set."""
    project: str = "signsearch"
    """W&B project; each search is a group named after the experiment."""
    entity: Optional[str] = None
    """W&B team or user; None uses the key's default."""


class Failure(BaseModel):
    """The ``failure:`` section: retries, and the stall guard."""

    model_config = _STRICT
    max_failures: int = Field(2, ge=0)
    """Retries of a failed trial, each resuming from its last checkpoint."""
    stall_timeout_s: float = Field(600.0, gt=0)
    """Seconds the search waits with trials pending and none running (Ray cannot place them) before it stops
    with one line saying what a trial needs and what is free; an autoscaling cluster starting nodes needs some."""


class SearchFile(BaseModel):
    """A whole search-space YAML file."""

    model_config = _STRICT
    experiment: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Experiment name: folder under the storage path, W&B group."""
    trial: TrialConfig = Field(default_factory=TrialConfig)
    """The trial config every trial starts from, exactly as a trial config file holds it (train.config.TrialConfig:
    data, model, optim, augment, workers, epochs, seed, amp, compile). trial.epochs is ASHA's max_t and every
    trial's schedule length; trial.workers are each trial's workers and resources. The space samples the rest."""
    space: dict[str, Param] = {}
    """Parameters to search, keyed by their dotted path in ``trial`` (e.g. optim.lr); a searched key takes no
    fixed value in ``trial``."""
    budget: Budget = Budget()
    """How many trials, and how they are stopped early."""
    max_concurrent_trials: Union[int, Literal["auto"]] = "auto"
    """Trials at once; "auto" derives it from the cluster's total CPUs/GPUs (max_workers included)."""
    searcher: SearcherConfig = SearcherConfig()
    """Which engine proposes the trials, and its settings."""
    metric: str = "val_acc"
    """Reported metric that ASHA and the searcher optimise; with ``objectives``, the first objective the loop
    reports (set from it: leave metric/mode out, or give the same)."""
    mode: Literal["max", "min"] = "max"
    """max: a higher metric is better (val_acc); min: lower is better (val_loss)."""
    objectives: Optional[list[Objective]] = Field(None, min_length=2)
    """Several objectives (a multi-objective search, tune/objectives.py), e.g. [{metric: val_acc, mode: max},
    {metric: latency_ms, mode: min}]; null: the single objective metric/mode."""
    latency: Latency = Latency()
    """How latency_ms is measured when it is an objective (tune/latency.py)."""
    wandb: Wandb = Wandb()
    """Weights & Biases logging of every trial."""
    failure: Failure = Failure()
    """Retries of failed trials, and when a search that cannot place its trials stops."""
    confirm: Confirm = Confirm()
    """The confirmation stage after the search (tune/confirm_settings.py); off unless top_k > 0."""

    @model_validator(mode="after")
    def _within_budget(self):
        if self.budget.grace_period > self.trial.epochs:
            raise ValueError(f"budget.grace_period ({self.budget.grace_period}) exceeds trial.epochs "
                             f"({self.trial.epochs})")
        if self.max_concurrent_trials != "auto" and self.max_concurrent_trials < 1:
            raise ValueError(f"max_concurrent_trials must be >= 1 or 'auto', got {self.max_concurrent_trials}")
        self.confirm.check_against(self.trial.seed)
        return self

    @model_validator(mode="after")
    def _tpe_settings_need_tpe(self):
        algorithm = self.searcher.algorithm
        for key in TPE_ONLY if algorithm.startswith("wandb_") else ():
            value, default = (_as_yaml(v)
                              for v in (getattr(self.searcher, key), SearcherConfig.model_fields[key].default))
            if value != default:
                raise ValueError(f"searcher.{key}: {value} is a TPE setting that {algorithm} (W&B's engine) does not "
                                 f"use: leave it at {default} or use algorithm tpe")
        return self

    @model_validator(mode="after")
    def _objectives(self):
        if self.objectives is None:
            if self.searcher.algorithm == "nsga2":
                raise ValueError("searcher.algorithm: nsga2 needs objectives (a multi-objective search); "
                                 "use tpe or random for one metric")
            return self
        if self.searcher.algorithm.startswith("wandb_"):
            raise ValueError(f"searcher.algorithm: {self.searcher.algorithm} optimises one metric "
                             "(a W&B Sweep has one); "
                             "a search with objectives uses tpe, nsga2 or random")
        check_objectives(self.objectives, REPORTED_METRICS)
        first = scheduled(self.objectives)
        given = {"metric", "mode"} & self.model_fields_set
        if given and (self.metric, self.mode) != (first.metric, first.mode):
            raise ValueError(f"metric/mode ({self.metric}, {self.mode}) and objectives both given: leave metric and "
                             f"mode out (the first trained objective, {first.metric} {first.mode}, is ASHA's)")
        self.metric, self.mode = first.metric, first.mode
        if self.searcher.algorithm == "nsga2" and self.searcher.startup_trials < 2:
            raise ValueError("searcher.startup_trials: nsga2 takes it as its population size, which must be >= 2")
        return self

    @property
    def objective_list(self) -> list[Objective]:
        """The objectives, in order: ``objectives``, or the single metric/mode."""
        return self.objectives or [Objective(metric=self.metric, mode=self.mode)]

    def trial_config(self, sampled: dict[str, Any]) -> TrialConfig:
        """``trial`` with dotted-key samples applied, validated."""
        if not sampled:
            return self.trial
        config = self.trial.to_dict()
        for key, value in sampled.items():
            set_dotted(config, key, value)
        return parse(config, source="space")

    def dump(self) -> str:
        """The resolved file as YAML (what search.yaml holds), loadable again: every fixed setting written
        out, the searched keys left out of ``trial`` (the space sets them)."""
        raw = self.model_dump(mode="json")
        if self.objectives is None:  # a single-objective search.yaml reads as it did before objectives existed
            raw.pop("objectives")
            raw.pop("latency")
        if self.confirm.top_k == 0:  # likewise without a confirmation stage
            raw.pop("confirm")
        for key in self.space:
            *parents, leaf = key.split(".")
            node = raw["trial"]
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
        return yaml.safe_dump(raw, sort_keys=False)


SPACE_EXAMPLE = "'space.optim.lr={type: loguniform, low: 1.0e-4, high: 0.1}'"
"""A whole parameter given by --set (space keys are dotted: ``space.optim.lr.high=0.1`` changes one bound of the
``optim.lr`` parameter, infra.overrides.set_in_flat)."""


def ignored_settings(search: SearchFile) -> list[str]:
    """Settings the search will not use, one line each: warned about, not refused, because the documented ways of
    comparing engines make them (``--set searcher.algorithm=wandb_bayes`` on a space written for TPE, the
    ``--set budget.early_stopping=false`` baseline of a space stopped by W&B hyperband)."""
    notes = []
    algorithm, budget, startup = search.searcher.algorithm, search.budget, search.searcher.startup_trials
    if algorithm.startswith("wandb_") and startup != SearcherConfig.model_fields["startup_trials"].default:
        notes.append(f"searcher.startup_trials ({startup}) is a TPE setting: {algorithm} "
                     "(W&B's engine) does not use it")
    if budget.scheduler == "wandb_hyperband" and not budget.early_stopping:
        notes.append("budget.scheduler: wandb_hyperband stops no trial with budget.early_stopping: false (every "
                     "trial runs to trial.epochs)")
    return notes


def load_search_file(path: str | Path, overrides: list[str] = (), base: Optional[Path] = None) -> SearchFile:
    """Parse, override and check a search file; every problem is one ConfigError line naming the file and
    the key as written in it; a setting the search will not use is one ``warning:`` line on stderr each.

    Relative paths (trial.data.root, trial.data.cache_dir, trial.model.weights) are made absolute against
    ``base`` (default: the current directory, where the command was started), so search.yaml, summary.json
    and every trial see the same absolute path.
    """
    raw = apply_overrides(load_yaml(path), overrides, flat={"space": SPACE_EXAMPLE})
    if isinstance(raw.get("trial"), dict):
        absolute_paths(raw["trial"], base or Path.cwd())
    try:
        search = SearchFile(**raw)
    except pydantic.ValidationError as error:
        raise ConfigError(f"{path}: {one_line(error, SearchFile)}") from None
    check_searched_not_fixed(path, search, raw.get("trial"))
    check_space(path, search)
    for note in ignored_settings(search):
        print(f"warning: {path}: {note}", file=sys.stderr)
    return search
