"""Search hyperparameters with Ray Tune (Optuna TPE + ASHA) over a search-space YAML.

    python tune/run_search.py --config search_spaces/gtsrb.yaml \
        --set trial.data.format=gtsrb trial.data.root=/data/gtsrb [--storage PATH|s3://...] [--resume] [--verbose]

The last line printed is the path of the experiment's summary.json. Exit codes: 0 done; 2 a
configuration, data or storage problem (one line on stderr, found before Ray starts where it can be,
or every trial failed on it); 1 no trial reported the metric for other reasons; 130 interrupted
(Ctrl-C, SIGINT) or 143 stopped (SIGTERM, what timeout, systemd, Kubernetes and Slurm send): both stop
the same way (trials stop, the search state is saved, summary.json says "interrupted") and the last
lines say how to continue with --resume; a second signal stops at once.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="search-space YAML (see search_spaces/)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override YAML keys by dotted path, "
                             "e.g. trial.data.root=/data/gtsrb budget.num_samples=32")
    parser.add_argument("--storage", default="runs", help="results/checkpoints root: a path shared by all nodes, "
                                                          "or a URI such as s3://bucket/prefix (default: ./runs)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="EXPERIMENT_DIR",
                        help="continue an interrupted search: the given folder, or the newest of this experiment")
    parser.add_argument("--num-samples", type=int, help="shorthand for --set budget.num_samples=N")
    parser.add_argument("--address", help="Ray to run on: a cluster address, 'auto' (Ray's lookup), or 'local' to "
                                          "always start one here (default: $RAY_ADDRESS, else the cluster `ray start` "
                                          "recorded here, else start one)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    parser.add_argument("--num-gpus", type=int, help="GPUs of the embedded local Ray (default: all); with --set "
                                                     "trial.workers.fake_gpus=true logical ones, to try a GPU space "
                                                     "on a CPU")
    parser.add_argument("--dashboard-host", default="127.0.0.1", help="embedded Ray's dashboard bind address")
    parser.add_argument("--dashboard-port", type=int,
                        help="embedded Ray's dashboard port (default: 8265, or the next free one; the URL is printed)")
    parser.add_argument("--verbose", action="store_true",
                        help="Ray's full output: every trial's config and results, the trials' own output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from infra.signals import stopped_code, terminate_like_ctrl_c

    terminate_like_ctrl_c()  # until Ray starts; the search then handles SIGTERM itself (tune/interrupt.py)
    if not args.verbose:
        # The trials' own output (a line per epoch, Ray Train's checkpoint notes) stays in Ray's log files
        # (<ray temp>/session_*/logs/worker-*) instead of the console; read before Ray is imported. Trial
        # failures still reach the console through Tune's error messages.
        os.environ.setdefault("RAY_LOG_TO_DRIVER", "0")
    from tune.wandb_logging import take_key

    take_key()  # WANDB_API_KEY out of the environment every Ray process and wandb-core inherit, into memory
    from infra.connect import RayConnection
    from train.config import ConfigError
    from train.data import DataError
    from tune import search as search_run
    from tune.search_outcome import SearchFailed, SearchInterrupted
    from tune.space import load_search_file
    from tune.summary import summary_line

    overrides = args.overrides + ([] if args.num_samples is None else [f"budget.num_samples={args.num_samples}"])
    try:
        # With --resume the search continues as saved in its folder; --config only names the
        # experiment to look for, and the overrides are checked against the saved search.
        connection = RayConnection(address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                                   dashboard_host=args.dashboard_host, dashboard_port=args.dashboard_port)
        search = load_search_file(args.config, [] if args.resume else overrides)
        summary = search_run.run(search, storage=args.storage, resume=args.resume, ray_connection=connection,
                                  source=args.config, overrides=overrides, verbose=args.verbose)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (SearchFailed, search_run.SearchStalled) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except SearchInterrupted as stop:
        if stop.summary:
            print(stop.summary)
        print("\n".join(stop.lines()), flush=True)
        return stop.code
    except KeyboardInterrupt as stop:  # before the search (or its Ray) started
        print("interrupted before the search started: nothing to continue", flush=True)
        return stopped_code(stop)
    print(summary_line(summary))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
