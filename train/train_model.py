"""Train one configuration with Ray Train, outside any search (for debugging one config).

    python train/train_model.py --config runs/smoke-.../best_config.yaml --set workers.num_workers=2 optim.lr=3e-3
    python train/train_model.py --config search_spaces/smoke.yaml --set trial.model.name=small_cnn

--config takes a trial config (e.g. a search's best_config.yaml) or a search-space file, whose ``trial``
section (the trial config every trial starts from) is trained and whose space is ignored. --set takes
dotted keys as the file writes them: optim.lr=... for a trial config, trial.optim.lr=... for a search file.
The last line printed is the path of the final checkpoint. Exit codes: 0 done, 2 a configuration or data
problem (one line), 130 Ctrl-C, 143 SIGTERM: both keep the last committed checkpoint, and the last line is the
command that continues the run from it (the same --name and --storage).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="trial config YAML or search-space YAML")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override keys of the file by dotted path, e.g. optim.lr=3e-3 workers.num_workers=2 "
                             "(trial.optim.lr=3e-3 for a search file)")
    parser.add_argument("--storage", default="runs/train",
                        help="where the run's checkpoints go (default: ./runs/train)")
    parser.add_argument("--name", help="run name (default: train-<timestamp>)")
    parser.add_argument("--address", help="Ray to run on: a cluster address, 'auto' (Ray's lookup), or 'local' to "
                                          "always start one here (default: $RAY_ADDRESS, else the cluster `ray start` "
                                          "recorded here, else start one)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    return parser.parse_args(argv)


def load_trial_config(path: str, overrides: list[str]):
    """A trial config from ``path``: the file itself, or a search file's ``trial`` section; ``overrides`` are
    dotted keys of that file."""
    from infra.overrides import apply_overrides, load_yaml
    from train.config import ConfigError, absolute_paths, parse

    raw = apply_overrides(load_yaml(path), overrides)
    at: tuple[str, ...] = ()
    if "experiment" in raw:  # a search-space file: train the trial config it embeds
        outside = [o for o in overrides if not o.startswith("trial.")]
        if outside:
            raise ConfigError(f"--set {outside[0]!r}: {path} is a search file, of which only the trial section "
                              f"is trained: set trial.<key> (e.g. trial.optim.lr=3e-3)")
        raw, at = raw.get("trial") or {}, ("trial",)
    # Relative paths are the user's, from where the command was started, not the Ray workers' folders.
    return parse(absolute_paths(raw, Path.cwd()) if isinstance(raw, dict) else raw, source=path, at=at)


def train(args: argparse.Namespace) -> str:
    """Run the TorchTrainer (named ``args.name``); return the final checkpoint's path."""
    import ray

    from infra.connect import RayConnection
    from infra.signals import terminate_like_ctrl_c
    from train.data.prepared import prepare
    from train.launch import torch_trainer

    cfg = load_trial_config(args.config, args.overrides)
    data = prepare(cfg.data)  # fail fast on bad data, and build the cache once before the workers start
    print(f"Ray dashboard: {RayConnection(args.address, args.num_cpus).connect()}", flush=True)
    terminate_like_ctrl_c()  # again: ray.init replaced the handler with its crash dump
    name = args.name
    result = torch_trainer(cfg, name=name, storage_path=str(Path(args.storage).resolve()),
                           data_key=data.cache_key).fit()
    ray.shutdown()  # flushes the workers' forwarded logs, so the checkpoint path really is the last line
    print(f"final: {({k: result.metrics[k] for k in ('epoch', 'val_acc', 'val_loss')})}")
    return result.checkpoint.path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from infra.signals import stopped_code, terminate_like_ctrl_c
    from train.config import ConfigError
    from train.data import DataError

    terminate_like_ctrl_c()
    # Named here, so that an interrupted run can say which name continues it.
    args.name = args.name or f"train-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        print(train(args))
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (infra/signals.py)
        import ray

        ray.shutdown()
        command = ["python", "train/train_model.py", "--config", args.config, "--storage", args.storage,
                   "--name", args.name]
        command += ["--set", *args.overrides] if args.overrides else []
        command += ["--address", args.address] if args.address else []
        command += ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
        print("interrupted; the run continues from its last committed checkpoint with:\n  " + shlex.join(command),
              flush=True)
        return stopped_code(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
