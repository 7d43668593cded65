"""The search-space YAML: its schema, its checks, and what it turns into (base config + Optuna space).

A file holds the experiment name, the data set, fixed training settings, the space to search, the
budget, the resources per trial, the searcher settings and the metric. Every section is a pydantic
model with ``extra="forbid"``; :func:`load_search_file` reports any problem as one line naming the
file, the key path and what is allowed.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from train.config import ConfigError, TrialConfig, absolute_paths, parse
from train.overrides import apply_overrides, load_yaml, set_dotted

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)
Scalar = Union[bool, int, float, str, None]


class _Param(BaseModel):
    model_config = _STRICT
    when: Optional[dict[str, Union[Scalar, list[Scalar]]]] = None
    """Sample this parameter only when every named parameter has this value (or one of these values)."""


class _Range(_Param):
    low: float
    high: float
    _high_note: ClassVar[str] = ""

    @model_validator(mode="after")
    def _non_empty(self):
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low}) must be below high ({self.high}){self._high_note}")
        return self


class LogUniform(_Range):
    type: Literal["loguniform"]

    @model_validator(mode="after")
    def _positive(self):
        if self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")
        return self

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)


class Uniform(_Range):
    type: Literal["uniform"]

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)


class QUniform(_Range):
    type: Literal["quniform"]
    q: float = Field(gt=0)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.q)


class RandInt(_Range):
    """Integers from low (inclusive) to high (exclusive), as ``ray.tune.randint``."""

    type: Literal["randint"]
    low: int
    high: int
    _high_note: ClassVar[str] = "; high is exclusive"

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high - 1)


class Choice(_Param):
    type: Literal["choice"]
    values: list[Scalar] = Field(min_length=1)

    def suggest(self, trial, name: str) -> Scalar:
        return trial.suggest_categorical(name, self.values)


Param = Annotated[Union[LogUniform, Uniform, QUniform, RandInt, Choice], Field(discriminator="type")]


class Budget(BaseModel):
    model_config = _STRICT
    num_samples: int = Field(16, ge=1)
    """Trials to run in total."""
    max_epochs: int = Field(10, ge=1)
    """Epochs of a trial that ASHA never stops (also the length of its LR schedule)."""
    grace_period: int = Field(1, ge=1)
    """Epochs every trial gets before ASHA may stop it."""
    reduction_factor: int = Field(3, ge=2)
    """ASHA keeps the top 1/reduction_factor of trials at each rung."""
    early_stopping: bool = True
    """ASHA early stopping; false runs every trial to max_epochs (a baseline for comparisons)."""

    @model_validator(mode="after")
    def _grace_within_budget(self):
        if self.grace_period > self.max_epochs:
            raise ValueError(f"grace_period ({self.grace_period}) exceeds max_epochs ({self.max_epochs})")
        return self


class Resources(BaseModel):
    model_config = _STRICT
    workers_per_trial: int = Field(1, ge=1)
    """Ray Train workers (DDP ranks) per trial; 1 trains in the trial's own process."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """Logical CPUs per worker; fractions let trials share cores."""
    gpus_per_worker: float = Field(0.0, ge=0)
    """GPUs per worker; fractions (e.g. 0.25) put several small trials on one GPU."""
    max_concurrent_trials: Union[int, Literal["auto"]] = "auto"
    """Trials at once; "auto" derives it from the cluster's total CPUs/GPUs (max_workers included)."""
    fake_gpus: bool = False
    """The cluster's GPUs are logical labels (Ray's fake multi-node cluster, cluster/local.yaml): trials on them
    train on the CPU. Never on real GPU nodes, where a trial given a GPU torch cannot see stops with an error."""

    @model_validator(mode="after")
    def _positive_concurrency(self):
        if self.max_concurrent_trials != "auto" and self.max_concurrent_trials < 1:
            raise ValueError(f"max_concurrent_trials must be >= 1 or 'auto', got {self.max_concurrent_trials}")
        return self


class Searcher(BaseModel):
    """Optuna's sampler and its settings (tune/searcher.py); the study is kept in <experiment>/study.db."""

    model_config = _STRICT
    seed: int = 0
    """Seed of the TPE sampler (and of random search); a resumed search continues from seed + trials so far."""
    startup_trials: int = Field(4, ge=1)
    """Random trials before TPE starts modelling."""
    algorithm: Literal["tpe", "random"] = "tpe"
    """tpe: Optuna TPE; random: Optuna's random sampler (the baseline)."""
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


class Wandb(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    """Log every trial as a W&B run; offline (local files) when WANDB_API_KEY is not set."""
    project: str = "signsearch"
    """W&B project; each search is a group named after the experiment."""
    entity: Optional[str] = None
    """W&B team or user; None uses the key's default."""


class Failure(BaseModel):
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
    dataset: dict[str, Any] = {}
    """Data set: format, root, image_size, roi_crop, val_fraction, ... (train.config.DataConfig)."""
    train: dict[str, Any] = {}
    """Fixed training settings (model, optim, augment, seed, amp), overridden by the space."""
    space: dict[str, Param] = {}
    """Parameters to search, keyed by dotted config path (e.g. optim.lr)."""
    budget: Budget = Budget()
    resources: Resources = Resources()
    searcher: Searcher = Searcher()
    metric: str = "val_acc"
    """Reported metric that ASHA and the searcher optimise."""
    mode: Literal["max", "min"] = "max"
    wandb: Wandb = Wandb()
    failure: Failure = Failure()

    def base_config(self) -> dict[str, Any]:
        """The trial config every trial starts from, before its sampled parameters are merged in."""
        config = copy.deepcopy(self.train)
        config["data"] = copy.deepcopy(self.dataset)
        config["epochs"] = self.budget.max_epochs
        config["workers"] = {**config.get("workers", {}),
                             "num_workers": self.resources.workers_per_trial,
                             "cpus_per_worker": self.resources.cpus_per_worker,
                             "gpus_per_worker": self.resources.gpus_per_worker,
                             "fake_gpus": self.resources.fake_gpus}
        return config

    def trial_config(self, sampled: dict[str, Any]) -> TrialConfig:
        """Base config with dotted-key samples applied, validated."""
        config = self.base_config()
        for key, value in sampled.items():
            set_dotted(config, key, value)
        return parse(config)


class define_by_run:  # noqa: N801 - used like a function; a class so the searcher state pickles
    """An Optuna define-by-run function sampling ``space`` in file order, honouring ``when``.

    Optuna parameter names are the dotted config keys ("optim.lr"); the call returns what was sampled,
    keyed the same way (a parameter whose condition does not hold is absent).
    """

    def __init__(self, space: dict[str, Param]):
        self.space = space

    def __call__(self, trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key, param in self.space.items():
            if param.when and not all(_matches(chosen.get(other), want) for other, want in param.when.items()):
                continue
            chosen[key] = param.suggest(trial, key)
        return chosen


def _matches(value: Any, want: Union[Scalar, list[Scalar]]) -> bool:
    return value in want if isinstance(want, list) else value == want


def sampled_params(config: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """The searched parameters of one trial's (nested) config, keyed by dotted path; a parameter whose
    ``when`` did not hold for this trial was not sampled (its config value is the default) and is left out."""
    out = {}
    for key, param in space.items():
        if param.when and not all(_matches(out.get(other), want) for other, want in param.when.items()):
            continue
        node: Any = config
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            out[key] = node
    return out


_MISSING = object()


def load_search_file(path: str | Path, overrides: list[str] = (), base: Optional[Path] = None) -> SearchFile:
    """Parse, override and check a search file; every problem is one ConfigError line.

    Relative paths (dataset.root, dataset.cache_dir, train.model.weights) are made absolute against ``base``
    (default: the current directory, where the command was started), so search.yaml, summary.json and every
    trial see the same absolute path.
    """
    raw = apply_overrides(load_yaml(path), overrides)
    _absolute_paths(raw, base or Path.cwd())
    try:
        search = SearchFile(**raw)
    except pydantic.ValidationError as error:
        raise ConfigError(_one_line(path, error)) from None
    _check_space(path, search)
    return search


def _absolute_paths(raw: dict[str, Any], base: Path) -> None:
    """The search file's path settings, made absolute in place (its sections as a trial config sees them)."""
    train = raw.get("train")
    absolute_paths({"data": raw.get("dataset"), "model": train.get("model") if isinstance(train, dict) else None},
                   base)


def _one_line(path: str | Path, error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    # Drop the discriminator tag pydantic puts in the location of union members.
    loc = [str(p) for p in first["loc"] if p not in ("loguniform", "uniform", "quniform", "randint", "choice")]
    key = ".".join(loc) or "<top level>"
    if first["type"] == "extra_forbidden":
        owner = _owner_fields(first["loc"][:-1])
        allowed = f" (allowed: {', '.join(owner)})" if owner else ""
        return f"{path}: unknown key '{key}'{allowed}"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        message = "type must be one of loguniform, uniform, quniform, randint, choice"
    return f"{path}: {key}: {message} (got {first.get('input')!r})"


_PARAM_TYPES = {"loguniform": LogUniform, "uniform": Uniform, "quniform": QUniform,
                "randint": RandInt, "choice": Choice}


def _owner_fields(loc: tuple) -> list[str]:
    """Allowed keys of the section that holds the key at ``loc``."""
    model: Any = SearchFile
    for part in loc:
        if part in _PARAM_TYPES:
            model = _PARAM_TYPES[part]
            continue
        field = model.model_fields.get(part) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model else []


def _check_space(path: str | Path, search: SearchFile) -> None:
    """The base config must be valid, and so must each parameter's extreme values; `when` must look back."""
    if "epochs" in search.train:
        raise ConfigError(f"{path}: train.epochs: set budget.max_epochs instead (it is also ASHA's max_t)")
    try:
        search.trial_config({})
    except ConfigError as error:
        raise ConfigError(f"{path}: {_strip_source(error)}") from None
    seen: list[str] = []
    for key, param in search.space.items():
        for other in (param.when or {}):
            if other not in seen:
                raise ConfigError(f"{path}: space.{key}.when: '{other}' must be a parameter listed earlier in space "
                                  f"(earlier: {', '.join(seen) or 'none'})")
        for value in _extremes(param):
            try:
                search.trial_config({**_defaults_for_when(search.space, param), key: value})
            except ConfigError as error:
                raise ConfigError(f"{path}: space.{key}: value {value!r} is not a valid config: "
                                  f"{_strip_source(error, file_keys=False)}") from None
        seen.append(key)
    for i, point in enumerate(search.searcher.warm_start):
        unknown = sorted(set(point) - set(search.space))
        if unknown:
            raise ConfigError(f"{path}: searcher.warm_start[{i}]: unknown parameter(s) {', '.join(unknown)} "
                              f"(allowed: {', '.join(search.space)})")


# Where trial-config keys live in the search file.
_FILE_KEYS = [("data.", "dataset."), ("epochs", "budget.max_epochs"),
              ("workers.num_workers", "resources.workers_per_trial"),
              ("workers.cpus_per_worker", "resources.cpus_per_worker"),
              ("workers.gpus_per_worker", "resources.gpus_per_worker"),
              ("workers.fake_gpus", "resources.fake_gpus")]


def _strip_source(error: ConfigError, file_keys: bool = True) -> str:
    """A trial-config error; with ``file_keys``, its key path is rewritten to where it sits in the file."""
    detail = str(error).removeprefix("trial config: ")
    if not file_keys:
        return detail
    match = re.match(r"(unknown key ')?([A-Za-z0-9_.]+)", detail)
    key = match.group(2)
    for config_key, file_key in _FILE_KEYS:
        if key.startswith(config_key):
            return detail.replace(key, file_key + key[len(config_key):], 1)
    return detail.replace(key, "train." + key, 1)


def _extremes(param: Any) -> list[Any]:
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, RandInt):
        return [param.low, param.high - 1]
    return [param.low, param.high]


def _defaults_for_when(space: dict[str, Param], param: Any) -> dict[str, Any]:
    """Values that make ``param``'s condition hold, so it is checked in the context it is used in."""
    out = {}
    for other, want in (param.when or {}).items():
        out[other] = want[0] if isinstance(want, list) else want
    return out
