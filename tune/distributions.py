"""The parameters of a search space: their distributions (each a typed YAML entry that samples itself from an
Optuna trial) and their ``when`` conditions, read one way by the Optuna searcher, the summary and W&B's engine.

A space maps dotted paths into the trial config to these (tune/space.py); Optuna parameter names are those keys.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)
Scalar = Union[bool, int, float, str, None]


class _Param(BaseModel):
    model_config = _STRICT
    when: Optional[dict[str, Union[Scalar, list[Scalar]]]] = None
    """Sample this parameter only when every named parameter has this value (or one of these values)."""


class _Range(_Param):
    low: float
    """Lowest value (inclusive)."""
    high: float
    """Highest value (inclusive for floats; exclusive for randint)."""
    _high_note: ClassVar[str] = ""

    @model_validator(mode="after")
    def _non_empty(self):
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low}) must be below high ({self.high}){self._high_note}")
        return self


class LogUniform(_Range):
    type: Literal["loguniform"]
    """Floats between low and high, uniform in their logarithm (learning rates, weight decay); low > 0."""

    @model_validator(mode="after")
    def _positive(self):
        if self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")
        return self

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)


class Uniform(_Range):
    type: Literal["uniform"]
    """Floats between low and high, uniform."""

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)


class QUniform(_Range):
    type: Literal["quniform"]
    """Floats between low and high in steps of q."""
    q: float = Field(gt=0)
    """Step between the values quniform draws from."""

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.q)


class RandInt(_Range):
    """Integers from low (inclusive) to high (exclusive), as ``ray.tune.randint``."""

    type: Literal["randint"]
    """Integers from low (inclusive) to high (exclusive), as ``ray.tune.randint``."""
    low: int
    """Lowest integer (inclusive)."""
    high: int
    """One above the highest integer (exclusive, as ``ray.tune.randint``)."""
    _high_note: ClassVar[str] = "; high is exclusive"

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high - 1)


class Choice(_Param):
    type: Literal["choice"]
    """One of ``values``, unordered (model names, widths, booleans)."""
    values: list[Scalar] = Field(min_length=1)
    """The values to choose from."""

    def suggest(self, trial, name: str) -> Scalar:
        return trial.suggest_categorical(name, self.values)


Param = Annotated[Union[LogUniform, Uniform, QUniform, RandInt, Choice], Field(discriminator="type")]


class define_by_run:  # used like a function; a class so the searcher state pickles
    """An Optuna define-by-run function sampling ``space`` in file order, honouring ``when``.

    Optuna parameter names are the dotted config keys ("optim.lr"); the call returns what was sampled,
    keyed the same way (a parameter whose condition does not hold is absent).
    """

    def __init__(self, space: dict[str, Param]):
        self.space = space

    def __call__(self, trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key, param in self.space.items():
            if not condition_holds(param, chosen):
                continue
            chosen[key] = param.suggest(trial, key)
        return chosen


def condition_holds(param: Param, chosen: dict[str, Any]) -> bool:
    """Whether ``param`` is sampled, given the values ``chosen`` so far (by space key): its ``when`` holds (or it
    has none). The one reading of ``when``, for the Optuna searcher, the summary and W&B's engine."""
    return not param.when or all(_matches(chosen.get(other), want) for other, want in param.when.items())


def _matches(value: Any, want: Union[Scalar, list[Scalar]]) -> bool:
    return value in want if isinstance(want, list) else value == want


def sampled_params(config: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """The searched parameters of one trial's (nested) config, keyed by dotted path; a parameter whose
    ``when`` did not hold for this trial was not sampled (its config value is the default) and is left out."""
    out = {}
    for key, param in space.items():
        if not condition_holds(param, out):
            continue
        node: Any = config
        for part in key.split("."):
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
        if node is not MISSING:
            out[key] = node
    return out


MISSING = object()
"""A config key that is not there (tell it from a None value)."""
