"""A search file as a W&B Sweeps config: what ``python -m tune.sweep export`` writes and the in-Ray engine runs
(tune/engines/wandb_sweep.py engine_config).

Mapping (one space, two engines):

* ``parameters``: every space key (its dotted name) by tune.engines.wandb_params.sweep_parameter: loguniform ->
  ``log_uniform_values``, uniform -> ``uniform``, quniform -> ``q_uniform``, randint (high exclusive) ->
  ``int_uniform`` with max = high - 1 (W&B's max is inclusive), choice -> ``values``; for method grid the finite
  ones as ``values`` (a continuous one is refused).
* ``when`` conditions: no W&B equivalent; the parameter is swept unconditionally and the trial drops it where its
  condition fails (tune.engines.wandb_params.active). The config's ``description`` names each such key.
* ``metric``: {name: metric, goal: maximize|minimize from mode}.
* ``early_terminate``: hyperband with ``min_iter`` = budget.grace_period, ``eta`` = budget.reduction_factor (none
  when budget.early_stopping is false).
* ``run_cap``: budget.num_samples. W&B's server takes it (W&B's launch scheduler reads it too), but the schema of
  the sweeps package (0.2.0) predates it, so the schema check runs on the config without it. A grid with more
  points than that is kept to num_samples runs, as the budget says, and the export warns (:func:`export_notes`).
* ``program`` / ``command``: this project's trial entry (tune/sweep/agent.py), given the space file and overrides,
  the agent's values through ``${args_json_file}``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

from train.config import ConfigError
from tune.engines.wandb_params import conditions, sweep_parameter
from tune.objectives import LATENCY_METRIC, direction

if TYPE_CHECKING:  # annotations only: tune/space.py imports the engine registry, which imports this
    from tune.space import SearchFile

METHODS = ("bayes", "random", "grid")
PROGRAM = "tune/sweep/__main__.py"
"""What the agent runs (relative to the repository root, where ``wandb agent`` is started)."""
NOT_IN_SCHEMA = ("run_cap",)
"""Top-level keys W&B's server takes that the sweeps package's schema does not know."""


def sweep_config(search: SearchFile, method: str = "bayes", *, space_file: Optional[str] = None,
                 overrides: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The sweep config of ``search`` (checked with the sweeps schema); ConfigError (one line) if it cannot be one.

    ``space_file`` and ``overrides``: what the agent's command passes to the trial entry (no command without a file).
    """
    if method not in METHODS:
        raise ConfigError(f"--method {method}: unknown (allowed: {', '.join(METHODS)})")
    if not search.space:
        raise ConfigError(f"{space_file or 'space'}: space is empty: a sweep needs at least one parameter")
    parameters = {}
    for key, param in search.space.items():
        mapped = sweep_parameter(param, grid=method == "grid")
        if not mapped:
            raise ConfigError(f"space.{key}: {param.type} is continuous; method grid needs a finite set of values "
                              "(choice, randint, quniform): use method bayes or random")
        parameters[key] = mapped
    config: dict[str, Any] = {"name": search.experiment, "method": method,
                              "metric": {"name": search.metric,
                                         "goal": direction(search.mode)},
                              "parameters": parameters}
    notes = conditions(search.space)
    described = []
    if notes:
        described.append("W&B Sweeps have no conditional parameters: these are swept always and the trial ignores "
                         "them where the condition fails: " + "; ".join(notes) + ".")
    if search.searcher.warm_start:
        # A sweep config has no first points; W&B's way is runs given as the sweep's prior runs.
        described.append(f"searcher.warm_start ({len(search.searcher.warm_start)} point(s)) has no sweep-config "
                         "equivalent: train them as runs and pass them to `wandb sweep --prior_run RUN_ID`.")
    if described:
        config["description"] = " ".join(described)
    if search.budget.early_stopping:
        config["early_terminate"] = {"type": "hyperband", "min_iter": search.budget.grace_period,
                                     "eta": search.budget.reduction_factor}
    if space_file is not None:
        config["program"] = PROGRAM
        config["command"] = agent_command(space_file, overrides)
    validate(config)
    config["run_cap"] = search.budget.num_samples
    return config


def grid_points(config: dict[str, Any]) -> int:
    """How many runs a method-grid config has: the product of its parameters' value counts."""
    return math.prod(len(parameter["values"]) for parameter in config["parameters"].values())


def export_notes(config: dict[str, Any]) -> list[str]:
    """Warnings for the user about an exported config: a grid that run_cap (budget.num_samples) cuts short."""
    if config["method"] != "grid" or config.get("run_cap") is None:
        return []
    points = grid_points(config)
    if points <= config["run_cap"]:
        return []
    return [f"method grid has {points} points but budget.num_samples ({config['run_cap']}) caps the sweep at "
            f"{config['run_cap']} runs (run_cap): add --set budget.num_samples={points} to run them all"]


def one_objective(search: SearchFile, metric: Optional[str]) -> SearchFile:
    """``search`` with the one metric a sweep optimises: W&B Sweeps have one, so a space with ``objectives`` is
    exported only for the objective the user names (``--objective``), never by quietly dropping the others."""
    if not search.objectives:
        if metric not in (None, search.metric):
            raise ConfigError(f"--objective {metric}: the space optimises {search.metric} only")
        return search
    listed = ", ".join(f"{objective.metric} {objective.mode}" for objective in search.objectives)
    trained = [objective for objective in search.objectives if objective.metric != LATENCY_METRIC]
    chosen = next((objective for objective in trained if objective.metric == metric), None)
    if chosen is None:
        names = " or ".join(f"--objective {objective.metric}" for objective in trained)
        raise ConfigError(f"objectives: a W&B Sweep optimises one metric and this space has {len(search.objectives)} "
                          f"({listed}): export it for one with {names} ({LATENCY_METRIC} is measured by the in-Ray "
                          f"search only, not by an agent's trial)")
    return search.model_copy(update={"objectives": None, "metric": chosen.metric, "mode": chosen.mode})


def agent_command(space_file: str, overrides: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The ``command`` W&B's agent expands (wandb/wandb_agent.py: ${env} ${interpreter} ${program} ...)."""
    # One --set=KEY=VALUE per override: a bare --set list would swallow the agent's arguments after it.
    sets = [f"--set={assignment}" for assignment in overrides]
    return ["${env}", "${interpreter}", "${program}", "agent-trial", "--space", space_file, *sets, "${args_json_file}"]


def validate(config: dict[str, Any]) -> None:
    """The sweeps package's own schema check (what W&B's server runs); ConfigError naming the first violation."""
    schema_violations_from_proposed_config = sweeps_module().schema_violations_from_proposed_config
    checked = {key: value for key, value in config.items() if key not in NOT_IN_SCHEMA}
    violations = schema_violations_from_proposed_config(checked)
    if violations:
        raise ConfigError(f"the sweep config fails W&B's sweep schema: {violations[0]}")


def sweeps_module():
    """The sweeps package, imported without its pydantic-v1 config warning (noise on every CLI call).

    That warning matters in one way: under pydantic 2, SweepRun's ``allow_population_by_field_name`` is ignored, so
    its aliased fields must be given by alias: ``sampledHistory=`` (``history=`` is silently dropped, and hyperband
    and bayes would see runs without a metric)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import sweeps
    return sweeps


def engine_config(search: SearchFile, method: Optional[str] = None) -> dict[str, Any]:
    """The sweep config W&B's engine runs (here, and tune/schedulers/wandb_hyperband.py): the export's mapping
    (tune/engines/wandb_config.py) without the run cap (Tune's budget counts the trials), always with hyperband's
    ``early_terminate``. ``method``: by default searcher.algorithm's (wandb_bayes -> bayes, wandb_random ->
    random); the scheduler alone (budget.scheduler: wandb_hyperband under TPE) runs no proposals: any validates."""
    algorithm = search.searcher.algorithm
    method = method or (algorithm.removeprefix("wandb_") if algorithm.startswith("wandb_") else "random")
    config = sweep_config(search, method)
    config.pop("run_cap")
    if "early_terminate" not in config:  # the scheduler needs it even when the space turns early stopping off
        config["early_terminate"] = {"type": "hyperband", "min_iter": search.budget.grace_period,
                                     "eta": search.budget.reduction_factor}
    return config
