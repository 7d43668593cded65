"""Benchmark: what the Ray search costs against a plain Optuna loop a user could write in an afternoon.

Pairs of runs, alternately, on the same machine, with the same space, trials, seed, warm start and pruning
settings (search_spaces/smoke.yaml: small_cnn vs mobilenetv3_small_050 at 48 px, 8 trials x up to 8 epochs,
TPE seed 0 with 3 start-up trials; early stopping with grace 1 epoch and reduction factor 3) on smoke's
synthetic signs, whose image cache is built once before either starts:

* **Ray search**: ``tune/run_search.py`` as a user runs it (a new process, ``--address local``), W&B on
  in offline mode; every CPU core a 1-thread trial (two at once on 2 cores), ASHA stopping trials.
* **plain loop**: a new process running ``optuna.Study.optimize`` in-process: TPE (the same settings
  as the searcher) with ``SuccessiveHalvingPruner`` (min resource = grace, same reduction factor),
  each trial the project's own ``train.loop.Trainer`` with one thread per core, one trial after another.

For each: epochs per second of the search (Ray: from its "Ray dashboard:" line, i.e. Ray is up, to the
driver's line for the last trial to end, so building the Tuner, starting trial processes and the
driver's W&B logging are in it; plain: from the study's creation to the last epoch), **start-up**,
counted separately (launch to those same first marks: Ray's imports, data-cache hit and ``ray.init``;
the plain loop's imports), seconds from launch to the first reported epoch (Ray: the first
``result.json`` row seen on disk, polled every 0.1 s; plain: the report itself), end to end, Ray's
own ``wall_s`` (summary.json: Ray start-up included), the epochs per model (a MobileNetV3 epoch costs
~1.6x a small_cnn one, and the two searches need not pick the same mix), and the best ``val_acc``
(each trial's last epoch). **Target: the Ray search's epochs/s >= 1.0x the plain loop's**, as the
median of the pairs' ratios.

    python bench/search_overhead.py [--repeats 3] [--trials 8] [--epochs 8] [--seed 0] [--set KEY=VALUE ...] [--keep]

Everything is written to a temp folder that is deleted afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package; train_overhead also puts the repo root on sys.path

from train_overhead import drop_scratch, load_average, machine, machine_line  # noqa: E402

REPO = BENCH.parent
SMOKE = REPO / "search_spaces" / "smoke.yaml"
TARGET = 1.0
TRIAL_ENDED = re.compile(r"^\[\s*\d+ s\] trial \w+ (finished|stopped by ASHA|failed)")
"""The compact display's line for a trial that ended (tune/progress.py), printed by the driver."""


def overrides(root: Path, args: argparse.Namespace) -> list[str]:
    """smoke.yaml settings both runs share: data and cache in the temp folder, trials, epochs, seed."""
    return [f"trial.data.root={root / 'signs'}", f"trial.data.cache_dir={root / 'cache'}",
            f"budget.num_samples={args.trials}", f"trial.epochs={args.epochs}",
            f"searcher.seed={args.seed}", *args.overrides]


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("RAY_ADDRESS", None)
    env.pop("WANDB_API_KEY", None)  # offline for sure: nothing is sent from a benchmark
    return env


# ------------------------------------------------------------------------------------------ Ray search
def ray_search(root: Path, args: argparse.Namespace, repeat: int) -> dict[str, Any]:
    storage = root / f"runs-{repeat}"
    command = [sys.executable, str(REPO / "tune" / "run_search.py"), "--config", str(SMOKE), "--storage", str(storage),
               "--address", "local", "--num-cpus", str(os.cpu_count() or 2),
               "--set", *overrides(root, args), "wandb.enabled=true"]
    marks: dict[str, float] = {}
    launch = time.time()
    proc = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    watcher = threading.Thread(target=_watch_first_row, args=(storage, marks, proc), daemon=True)
    watcher.start()
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Ray dashboard:") and "ray_up" not in marks:
            marks["ray_up"] = time.time()
        if TRIAL_ENDED.match(line):
            marks["last_trial_ended"] = time.time()
    rc = proc.wait()
    marks["exit"] = time.time()
    watcher.join(timeout=5)
    if rc != 0:
        raise RuntimeError(f"the Ray search failed (exit {rc}):\n" + "\n".join(lines[-40:]))
    summary = json.loads(Path(lines[-1]).read_text())
    epochs = summary["total_epochs"]
    first = marks.get("first_row", marks["exit"])  # the watcher polls until the search ends
    search_s = marks["last_trial_ended"] - marks["ray_up"]
    model_epochs: Counter[str] = Counter()
    for trial in summary["trials"]:
        model_epochs[trial["config"]["model"]["name"]] += trial["epochs"]
    return {"epochs": epochs, "search_s": search_s, "epochs_per_s": epochs / search_s,
            "startup_s": marks["ray_up"] - launch, "first_epoch_s": first - launch, "wall_s": summary["wall_s"],
            "end_to_end_s": marks["exit"] - launch, "best_val_acc": summary["best"]["metrics"]["val_acc"],
            "model_epochs": dict(sorted(model_epochs.items())),
            "trials": summary["num_trials"], "errors": summary["num_errors"],
            "epochs_per_trial": sorted((t["epochs"] for t in summary["trials"]), reverse=True),
            "output_lines": len(lines),
            "wandb_runs": len(list(Path(summary["experiment_dir"]).glob("wandb/offline-run-*")))}


def _watch_first_row(storage: Path, marks: dict[str, float], proc: subprocess.Popen) -> None:
    """Record when the first epoch's result.json row appears (Tune's driver writes it on the result)."""
    while proc.poll() is None:
        for path in storage.glob("*/trial_*/result.json"):
            try:
                if path.stat().st_size > 0:
                    marks["first_row"] = time.time()
                    return
            except OSError:
                continue
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------ plain loop
def plain_loop(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-loop-child", json.dumps(overrides(root, args))]
    launch = time.time()
    out = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True)
    end = time.time()
    if out.returncode != 0:
        raise RuntimeError(f"the plain loop failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e["event"] == "epoch"]
    ready = next(e["t"] for e in events if e["event"] == "study")
    finals: dict[int, float] = {}
    for e in epochs:
        finals[e["trial"]] = e["val_acc"]  # each trial's last epoch, as summary.json's best uses
    per_trial = Counter(e["trial"] for e in epochs)
    model_epochs = Counter(e["model"] for e in epochs)
    search_s = epochs[-1]["t"] - ready
    return {"epochs": len(epochs), "search_s": search_s, "epochs_per_s": len(epochs) / search_s,
            "startup_s": ready - launch, "first_epoch_s": epochs[0]["t"] - launch, "end_to_end_s": end - launch,
            "best_val_acc": max(finals.values()), "trials": len(per_trial), "errors": 0,
            "model_epochs": dict(sorted(model_epochs.items())),
            "epochs_per_trial": sorted(per_trial.values(), reverse=True)}


def plain_loop_child(assignments: list[str]) -> None:
    """The plain loop itself (run in a process of its own); prints one JSON event per line."""
    import optuna
    import torch

    from train.data.prepared import prepare
    from train.loop import Trainer
    from train.session import LocalSession
    from tune.distributions import define_by_run
    from tune.engines.tpe import tpe_options
    from tune.objectives import direction
    from tune.space import load_search_file

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = load_search_file(SMOKE, assignments)
    data = prepare(search.trial_config({}).data)
    cores = os.cpu_count() or 2
    torch.set_num_threads(cores)
    budget = search.budget
    study = optuna.create_study(
        direction=direction(search.mode),
        sampler=optuna.samplers.TPESampler(seed=search.searcher.seed,
                                           **tpe_options(search.searcher, search.space, concurrency=1)),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=budget.grace_period,
                                                      reduction_factor=budget.reduction_factor))
    for point in search.searcher.warm_start:
        study.enqueue_trial(dict(point))
    _emit({"event": "study", "t": time.time()})

    def objective(trial: optuna.Trial) -> float:
        sampled = define_by_run(search.space)(trial)
        cfg = search.trial_config({**sampled, "workers.threads_per_worker": cores})
        last: dict[str, float] = {}

        def on_report(metrics: dict[str, Any]) -> None:
            value, epoch = metrics[search.metric], int(metrics["epoch"])
            _emit({"event": "epoch", "t": time.time(), "trial": trial.number, "epoch": epoch, "val_acc": value,
                   "model": cfg.model.name})
            last["value"] = value
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        Trainer(cfg, LocalSession(on_report=on_report), data=data).fit()
        return last["value"]

    study.optimize(objective, n_trials=budget.num_samples)


def _emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


# ------------------------------------------------------------------------------------------ report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Ray/plain pairs, run alternately")
    parser.add_argument("--trials", type=int, default=8, help="budget.num_samples of both")
    parser.add_argument("--epochs", type=int, default=8, help="trial.epochs of both")
    parser.add_argument("--seed", type=int, default=0, help="searcher.seed of both")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="smoke.yaml overrides for both")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--plain-loop-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_loop_child:
        sys.path[:0] = [str(REPO)]
        plain_loop_child(json.loads(args.plain_loop_child))
        return

    from train.data.prepared import prepare
    from tune.space import load_search_file

    root = Path(tempfile.mkdtemp(prefix="signsearch-bench-overhead-"))
    out: dict[str, Any] = {"benchmark": "search_overhead", "machine": machine(), "trials": args.trials,
                           "epochs": args.epochs, "seed": args.seed, "overrides": args.overrides, "pairs": []}
    load = {"start": load_average()}
    try:
        prepare(load_search_file(SMOKE, overrides(root, args)).trial_config({}).data)  # the cache, once
        for repeat in range(1, args.repeats + 1):
            pair = {"ray": ray_search(root, args, repeat)}
            load[f"after_ray_{repeat}"] = load_average()
            pair["plain"] = plain_loop(root, args)
            load[f"after_plain_{repeat}"] = load_average()
            pair["ratio"] = pair["ray"]["epochs_per_s"] / pair["plain"]["epochs_per_s"]
            out["pairs"].append(pair)
    finally:
        drop_scratch(root, args.keep)
    out["load_average"] = load
    out["ratio"] = statistics.median(pair["ratio"] for pair in out["pairs"])
    report(out)


def report(out: dict[str, Any]) -> None:
    print(machine_line(out))
    print(f"Task: smoke.yaml, {out['trials']} trials x up to {out['epochs']} epochs, seed {out['seed']}"
          + (f", --set {' '.join(out['overrides'])}" if out["overrides"] else ""))
    print(f"  {'pair, run':<48}{'epochs':>7}{'search s':>10}{'epochs/s':>10}{'start-up s':>12}{'1st epoch s':>13}"
          f"{'end-to-end s':>14}{'best val_acc':>14}")
    for number, pair in enumerate(out["pairs"], 1):
        for key, name in (("ray", "Ray search (run_search.py, W&B offline)"), ("plain", "plain Optuna loop")):
            r = pair[key]
            print(f"  {f'{number}. {name}':<48}{r['epochs']:>7}{r['search_s']:>10.1f}{r['epochs_per_s']:>10.3f}"
                  f"{r['startup_s']:>12.1f}{r['first_epoch_s']:>13.1f}{r['end_to_end_s']:>14.1f}"
                  f"{r['best_val_acc']:>14.4f}")
        ray, plain = pair["ray"], pair["plain"]
        print(f"     ratio {pair['ratio']:.3f}; epochs per model: Ray {ray['model_epochs']}, plain "
              f"{plain['model_epochs']}; Ray's wall_s {ray['wall_s']:.1f} s (start-up included); "
              f"Ray printed {ray['output_lines']} lines, wrote {ray['wandb_runs']} W&B runs")
    verdict = "meets" if out["ratio"] >= TARGET else "MISSES"
    print(f"  Ray / plain epochs per second, median of {len(out['pairs'])} pairs: {out['ratio']:.3f} -> {verdict} "
          f"target >= {TARGET:.1f}x")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
