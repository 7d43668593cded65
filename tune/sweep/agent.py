"""The trial a W&B agent runs: one trial of a search file's space with the agent's values, one W&B row per epoch.

W&B's agent (wandb/wandb_agent.py, ``Agent._command_run``) expands the sweep's ``command``: ``${env}`` ->
/usr/bin/env, ``${interpreter}`` -> python, ``${program}`` -> the config's program, ``${args}`` -> ``--key=value``
per parameter, ``${args_json_file}`` -> a JSON file of {key: value}; it sets WANDB_SWEEP_ID / WANDB_RUN_ID (and
the sweep's parameters for ``wandb.init`` to pick up as ``wandb.config``). Both argument forms are read here.

The trial is the search's trial: the space file's ``trial`` config with the agent's values applied (a conditional
parameter dropped where its ``when`` fails, tune/engines/wandb_params.py), trained in this process by the project's loop
(train/loop.py, no Ray). Each epoch is logged as one row with ``step = epoch`` and the metric, so W&B's
hyperband (which reads a run's history) can stop it; the agent stops a run with SIGTERM, which ends this one
after its current step as a finished run with the epochs it trained (exit 0: a stopped run is not a failed one).
Checkpoints are kept in the W&B run's folder (``files/checkpoints``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

from infra.overrides import safe_load
from train.config import ConfigError
from tune.space import SearchFile


def agent_values(args: list[str], space: dict) -> dict[str, Any]:
    """The agent's parameter values from its arguments: a JSON file (``${args_json_file}``) and/or ``--key=value``
    flags (``${args}``, values parsed as YAML, the way W&B writes them: ``str(value)``)."""
    values: dict[str, Any] = {}
    for arg in args:
        if arg.startswith("--"):
            key, sep, text = arg[2:].partition("=")
            if not sep:
                raise ConfigError(f"agent argument {arg!r}: expected --key=value (W&B's ${{args}})")
            values[key] = safe_load(text) if text else None
        elif Path(arg).is_file():
            try:
                values.update(json.loads(Path(arg).read_text()))
            except ValueError:
                raise ConfigError(f"agent argument {arg}: not a JSON file of parameter values "
                                  "(W&B's ${args_json_file})") from None
        else:
            raise ConfigError(f"agent argument {arg!r}: neither --key=value nor an existing JSON file")
    unknown = sorted(set(values) - set(space))
    if unknown:
        raise ConfigError(f"agent parameter(s) {', '.join(unknown)} are not in the space "
                          f"(space keys: {', '.join(space)})")
    return values


def run_agent_trial(search: SearchFile, values: dict[str, Any], engine: str = "wandb_sweep_agent") -> int:
    """Train one trial with ``values``, logging to a W&B run (the agent's); return the exit code."""
    import wandb

    from infra.signals import Stopped, terminate_like_ctrl_c
    from train.loop import run
    from train.session import LocalSession
    from tune.engines.wandb_params import active
    from tune.wandb_logging import api_key, wandb_mode

    params = active(values, search.space)
    cfg = search.trial_config(params)  # ConfigError (one line) for a value the trial config refuses
    terminate_like_ctrl_c()  # the agent's stop (SIGTERM) ends the loop where Ctrl-C would
    settings = wandb.Settings(silent=True, save_code=False, disable_git=True, x_save_requirements=False,
                              api_key=api_key())
    # Under an agent (WANDB_SWEEP_ID set) the sweep's project and entity are the agent's (its environment): a
    # different project here would put the run outside its sweep.
    where = {} if os.environ.get("WANDB_SWEEP_ID") else {"project": search.wandb.project, "entity": search.wandb.entity}
    run_ = wandb.init(**where, group=search.experiment,
                      config={**cfg.to_dict(), "params": params, "engine": engine}, mode=wandb_mode(),
                      tags=[engine], settings=settings)
    metric = search.metric

    def log(metrics: dict[str, Any]) -> None:
        row = {key: value for key, value in metrics.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
        run_.log(row, step=int(row["epoch"]))
        if metric not in row:
            raise ConfigError(f"metric: the trial reports no '{metric}' (it reports {', '.join(sorted(row))})")

    checkpoints = Path(run_.dir) / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    code = 0
    try:
        run(cfg, LocalSession(on_report=log, checkpoint_root=checkpoints))
    except Stopped:
        print("stopped by the sweep (SIGTERM): the run ends with the epochs it trained", file=sys.stderr, flush=True)
    except BaseException:
        code = 1
        raise
    finally:
        run_.finish(exit_code=code)
    return code


def main(space_file: str, overrides: list[str], agent_args: list[str], engine: Optional[str] = None) -> int:
    from tune.space import load_search_file

    search = load_search_file(space_file, overrides)
    values = agent_values(agent_args, search.space)
    return run_agent_trial(search, values, **({"engine": engine} if engine else {}))
