"""Train one configuration with Ray Train, outside any search (for debugging one config).

    python train/train_model.py --config search_spaces/smoke.yaml --set workers.num_workers=2 optim.lr=3e-3
    python train/train_model.py --config runs/smoke-.../best_config.yaml

--config takes a trial config (e.g. a search's best_config.yaml) or a search-space file, whose fixed
settings (dataset, train, budget.max_epochs, resources) are used and whose space is ignored; with a
search file, --set takes its keys (dataset.root=...) as well as trial-config keys (optim.lr=...).
The last line printed is the path of the final checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="trial config YAML or search-space YAML")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override trial-config keys by dotted path, e.g. optim.lr=3e-3 workers.num_workers=2")
    parser.add_argument("--storage", default="runs/train", help="where the run's checkpoints go (default: ./runs/train)")
    parser.add_argument("--name", help="run name (default: train-<timestamp>)")
    parser.add_argument("--address", help="Ray to run on: a cluster address, or 'local' to always start one here "
                                          "(default: $RAY_ADDRESS, else a cluster running here, else start one)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    return parser.parse_args(argv)


def load_trial_config(path: str, overrides: list[str]):
    """A trial config from ``path``; for a search file, overrides may name its keys or trial-config keys."""
    from train.config import absolute_paths, parse
    from train.overrides import apply_overrides, load_yaml

    raw = load_yaml(path)
    if "experiment" in raw:  # a search-space file: train its fixed settings
        from tune.space import SearchFile, load_search_file

        in_file = [o for o in overrides if o.split(".", 1)[0].split("=", 1)[0] in SearchFile.model_fields]
        overrides = [o for o in overrides if o not in in_file]
        raw = load_search_file(path, in_file).base_config()
    # Relative paths are the user's, from where the command was started, not the Ray workers' folders.
    return parse(absolute_paths(apply_overrides(raw, overrides), Path.cwd()), source=path)


def train(args: argparse.Namespace) -> str:
    """Run the TorchTrainer; return the final checkpoint's path."""
    import ray

    from train.cache import prepare
    from train.connect import RayConnection
    from train.launch import torch_trainer

    cfg = load_trial_config(args.config, args.overrides)
    data = prepare(cfg.data)  # fail fast on bad data, and build the cache once before the workers start
    print(f"Ray dashboard: {RayConnection(args.address, args.num_cpus).connect()}", flush=True)
    name = args.name or f"train-{datetime.now():%Y%m%d-%H%M%S}"
    result = torch_trainer(cfg, name=name, storage_path=str(Path(args.storage).resolve()),
                           data_key=data.cache_key).fit()
    ray.shutdown()  # flushes the workers' forwarded logs, so the checkpoint path really is the last line
    print(f"final: {({k: result.metrics[k] for k in ('epoch', 'val_acc', 'val_loss')})}")
    return result.checkpoint.path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError

    try:
        print(train(args))
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
