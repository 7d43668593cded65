"""Benchmark: epochs ASHA+TPE spends to match random search at full budget, and trial start overhead.

On a fixed synthetic task (bench/efficiency_space.yaml: search_spaces/smoke.yaml's space as of run F, small_cnn at
32 px, on its synthetic signs made harder:
``TASK`` below, 43 classes, 1,720 train / 860 val images), in one run, with the real search runner
(``tune.search.run``, W&B off, each search on a new local Ray it starts and stops):

* **random**: ``budget.early_stopping=false`` (FIFO, every trial runs ``--epochs``) and
  ``searcher.algorithm=random`` (Optuna's RandomSampler);
* **ASHA+TPE**: smoke.yaml's searcher and ASHA settings (grace 1, reduction factor 3: rungs at epochs 1, 3 and 9 of
  the default 9) at the same budget.

Both get the same number of trials, seed and max epochs (``--seeds`` runs one such pair per seed and reports the
median ratio). Each search's trial-epochs (result.json rows of every
trial) are put in completion order, and the epochs spent until the first epoch whose ``val_acc`` reaches the best
accuracy random search found are counted (the qualifying epoch included). Completion time of a row = its trial's
start + ``time_total_s``; Tune's ``timestamp`` is whole seconds, so a trial's start is pinned as tightly as its rows
allow (the latest ``timestamp - time_total_s``; off by < 1 s, the same for all rows of a trial).
**Target: ASHA+TPE needs <= 35 % of random search's epochs.**

Random search's trials are independent draws, so the order they happened to run in is luck: with 24 trials its best
one comes anywhere from first to last. The ratio is therefore given twice: against the epochs random search spent
in the order it ran (*realised*), and against the mean over 2,000 seeded shuffles of its trials' order, each trial's
epochs kept together (*order-averaged*: the same quantity with that luck averaged out). ASHA+TPE's order is not luck
(TPE learns from earlier trials), so it is counted as it ran. Both get a verdict.

Trial start overhead = first result's ``time_total_s`` (Tune counts it from the trial function's start) minus that
epoch's compute (``epoch_s``, the training pass the loop reports). That still holds the first epoch's validation pass
and checkpoint write, so it is also shown net of their typical cost (median ``time_this_iter_s - epoch_s`` of later
epochs). Given for the 1-worker trials of the random search (fresh trial processes vs reused ones) and for a small
extra search with 2-worker trials (a trial driver running a TorchTrainer; fresh vs reused driver).

    python bench/search_efficiency.py [--trials 24] [--epochs 9] [--seeds 0 [1 ...]] [--two-worker-trials 2]
    python bench/search_efficiency.py --engines random tpe+asha wandb_bayes+wandb_hyperband wandb_bayes+asha \
        --seeds 0 1 2        # the engines side by side instead (bench/search_engines.py)

Ray is always a new local one (``RayConnection(address="local")``: never someone else's cluster on this machine);
everything is written to a temp folder that is deleted afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path
from random import Random
from typing import Any, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package; train_overhead also puts the repo root on sys.path

from train_overhead import TWO_WORKER_CPUS, drop_scratch, load_average, machine, machine_line  # noqa: E402

REPO = BENCH.parent
# smoke.yaml's space as of run F (small_cnn at 32 px): smoke.yaml itself now also searches a MobileNetV3.
SPACE = BENCH / "efficiency_space.yaml"
TARGET = 0.35
# The fixed task: smoke.yaml's synthetic signs with all 43 classes (a 10-class set is so easy that most configs
# tie near 0.95 and "reaching random's best" is decided by validation noise).
TASK = ("trial.data.synthetic.num_classes=43", "trial.data.synthetic.tracks_per_class=6")
SHUFFLES = 2000


def search_file(root: Path, name: str, args: argparse.Namespace, seed: int, *extra: str):
    """The fixed task's file, sized by ``args`` and changed by ``--set`` (both searches), then by ``extra``."""
    from tune.space import load_search_file

    return load_search_file(SPACE, [
        f"experiment=bench-{name}", f"trial.data.root={root / 'signs'}", f"trial.data.cache_dir={root / 'cache'}",
        f"budget.num_samples={args.trials}", f"trial.epochs={args.epochs}", f"searcher.seed={seed}",
        "wandb.enabled=false", *TASK, *args.overrides, *extra])


def run_search(search, root: Path) -> dict[str, Any]:
    """Run one search with the project's runner on a new local Ray; its summary.json and every trial's rows."""
    from infra.connect import RayConnection
    from tune import search as search_runner

    # address="local": always a Ray of our own (never someone else's cluster on this machine), stopped by run().
    connection = RayConnection(address="local", num_cpus=os.cpu_count() or 2)
    try:
        summary_path = Path(search_runner.run(search, storage=str(root / "runs"), ray_connection=connection))
    finally:  # run() stops Ray when it finishes; this stops it when run() did not
        import ray

        if ray.is_initialized():
            ray.shutdown()
    summary = json.loads(summary_path.read_text())
    errors = [t["error"] for t in summary["trials"] if t["status"] == "ERROR"]
    if errors:
        raise RuntimeError(f"{search.experiment}: {len(errors)} trial(s) failed, first: {errors[0]}")
    return {"wall_s": round(summary["wall_s"], 1), "summary": summary, "rows": result_rows(summary_path.parent)}


def result_rows(folder: Path) -> list[dict[str, Any]]:
    """Every trial-epoch of a search, in completion order (see the module docstring)."""
    keep = ("trial_id", "epoch", "val_acc", "epoch_s", "time_this_iter_s", "time_total_s", "timestamp", "pid")
    rows = []
    for path in sorted(folder.glob("trial_*/result.json")):
        trial = [{k: row.get(k) for k in keep}
                 for row in map(json.loads, path.read_text().splitlines()) if "val_acc" in row]
        if not trial:
            continue
        start = max(row["timestamp"] - row["time_total_s"] for row in trial)
        for row in trial:
            row["trial_start"] = start
            row["done_at"] = start + row["time_total_s"]
        rows.extend(trial)
    rows.sort(key=lambda row: row["done_at"])
    return rows


def epochs_to_reach(rows: list[dict[str, Any]], target: float) -> Optional[int]:
    for count, row in enumerate(rows, start=1):
        if row["val_acc"] >= target - 1e-12:
            return count
    return None


def order_averaged_epochs_to_reach(rows: list[dict[str, Any]], target: float) -> Optional[float]:
    """Mean of :func:`epochs_to_reach` over seeded shuffles of the trials' order (one trial after another)."""
    trials: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda row: row["epoch"]):
        trials.setdefault(row["trial_id"], []).append(row)
    runs = list(trials.values())
    if epochs_to_reach(rows, target) is None:
        return None
    rng, total = Random(0), 0
    for _ in range(SHUFFLES):
        rng.shuffle(runs)
        total += epochs_to_reach([row for run in runs for row in run], target)
    return total / SHUFFLES


def start_overheads(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trial start overhead of every trial, grouped by fresh / reused trial process, with medians."""
    later = [r["time_this_iter_s"] - r["epoch_s"] for r in rows if r["epoch"] >= 2]
    per_epoch_other = statistics.median(later) if later else 0.0  # validation + checkpoint + report
    firsts = sorted((r for r in rows if r["epoch"] == 1), key=lambda r: r["trial_start"])
    seen, groups = set(), {"fresh": [], "reused": []}
    for row in firsts:
        raw = row["time_total_s"] - row["epoch_s"]
        groups["reused" if row["pid"] in seen else "fresh"].append((raw, raw - per_epoch_other))
        seen.add(row["pid"])
    out = {}
    for process, values in groups.items():
        if values:
            out[process] = {"trials": len(values),
                            "median_s": round(statistics.median(v[0] for v in values), 2),
                            "median_net_s": round(statistics.median(v[1] for v in values), 2),
                            "each_s": [round(v[0], 2) for v in values]}
    out["per_epoch_eval_checkpoint_s"] = round(per_epoch_other, 2)
    return out


def describe(result: dict[str, Any], target: float) -> dict[str, Any]:
    rows = result["rows"]
    best = max(row["val_acc"] for row in rows)
    return {"trials": result["summary"]["num_trials"], "total_epochs": len(rows), "best_val_acc": best,
            "epochs_to_best": epochs_to_reach(rows, best), "epochs_to_target": epochs_to_reach(rows, target),
            "epochs_per_trial": sorted((t["epochs"] for t in result["summary"]["trials"]), reverse=True),
            "wall_s": result["wall_s"]}


def compare(random_run: dict[str, Any], asha_run: dict[str, Any], seed: int) -> dict[str, Any]:
    """Epochs each search spent to reach the best val_acc random search found (one seed)."""
    target = max(row["val_acc"] for row in random_run["rows"])
    random, asha = describe(random_run, target), describe(asha_run, target)
    random["epochs_to_target_order_averaged"] = round(order_averaged_epochs_to_reach(random_run["rows"], target), 1)
    needs = asha["epochs_to_target"]

    def ratio(epochs: float) -> Optional[float]:
        return round(needs / epochs, 3) if needs is not None else None

    return {"seed": seed, "target_val_acc": target, "random": random, "asha_tpe": asha,
            "epochs_ratio": ratio(random["epochs_to_target"]),
            "epochs_ratio_order_averaged": ratio(random["epochs_to_target_order_averaged"]),
            "epochs_ratio_vs_random_total": ratio(random["total_epochs"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per search (budget.num_samples)")
    parser.add_argument("--epochs", type=int, default=9, help="trial.epochs (random runs every trial to it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="searcher.seed of a random / ASHA+TPE pair each (several: the median ratio is reported)")
    parser.add_argument("--two-worker-trials", type=int, default=2,
                        help="trials of the 2-worker start-overhead search (0 skips it)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of efficiency_space.yaml for both searches, e.g. budget.reduction_factor=2")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (result.json rows, summaries)")
    parser.add_argument("--engines", nargs="+", metavar="ENGINE",
                        help="compare search engines instead (bench/search_engines.py): any of random, tpe+asha, "
                             "wandb_bayes+wandb_hyperband, wandb_bayes+asha; same task, budget and --seeds each")
    args = parser.parse_args()
    if args.engines:
        engines_main(args)
        return

    from train.data.prepared import prepare

    info = machine()
    load = {"start": load_average()}
    root = Path(tempfile.mkdtemp(prefix="signsearch-bench-search-"))
    out: dict[str, Any] = {"benchmark": "search_efficiency", "machine": info, "trials": args.trials,
                           "epochs": args.epochs, "seeds": args.seeds,
                           "overrides": args.overrides}
    try:
        first = search_file(root, "asha-tpe", args, args.seeds[0])
        data = prepare(first.trial_config({}).data)  # generated once here; every search below hits the cache
        out["task"] = {"model": first.trial.model.name, "image_size": first.trial.data.image_size,
                       "batch": first.trial_config({}).optim.batch_size,
                       "train_images": len(data.train.labels), "val_images": len(data.val.labels),
                       "classes": len(data.class_names), "grace_period": first.budget.grace_period,
                       "reduction_factor": first.budget.reduction_factor}
        out["ray_cpus"] = os.cpu_count() or 2
        runs, one_worker_rows, two_run = [], [], None
        for seed in args.seeds:
            random_run = run_search(search_file(root, f"random-s{seed}", args, seed,
                                                "budget.early_stopping=false", "searcher.algorithm=random"), root)
            load[f"after_random_s{seed}"] = load_average()
            asha_run = run_search(search_file(root, f"asha-tpe-s{seed}", args, seed), root)
            load[f"after_asha_s{seed}"] = load_average()
            runs.append(compare(random_run, asha_run, seed))
            one_worker_rows += random_run["rows"] + asha_run["rows"]
        if args.two_worker_trials:
            two_args = argparse.Namespace(**{**vars(args), "trials": args.two_worker_trials, "epochs": 2})
            two_run = run_search(search_file(root, "two-worker", two_args, args.seeds[0],
                                             "budget.early_stopping=false", "searcher.algorithm=random",
                                             "trial.workers.num_workers=2",
                                             f"trial.workers.cpus_per_worker={TWO_WORKER_CPUS}"), root)
            load["after_two_worker"] = load_average()
        out["runs"] = runs
        # A seed where ASHA+TPE never reached random's best counts as an infinite ratio.
        for key in ("epochs_ratio", "epochs_ratio_order_averaged"):
            median = statistics.median(math.inf if r[key] is None else r[key] for r in runs)
            out[f"{key}_median"] = None if math.isinf(median) else median
        out["start_overhead"] = {"one_worker": start_overheads(one_worker_rows)}
        if two_run is not None:
            out["start_overhead"]["two_worker"] = start_overheads(two_run["rows"])
    finally:
        drop_scratch(root, args.keep)
    load["end"] = load_average()
    out["load_average"] = load
    report(out)


def engines_main(args: argparse.Namespace) -> None:
    """--engines: every engine on the fixed task, per seed (bench/search_engines.py)."""
    from search_engines import ENGINES, report_engines, run_engines

    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        print(f"error: --engines: unknown {', '.join(unknown)} (allowed: {', '.join(ENGINES)})", file=sys.stderr)
        sys.exit(2)
    info, root = machine(), Path(tempfile.mkdtemp(prefix="signsearch-bench-engines-"))
    out: dict[str, Any] = {"benchmark": "search_efficiency --engines", "machine": info, "trials": args.trials,
                           "epochs": args.epochs, "seeds": args.seeds, "overrides": args.overrides,
                           "load_average": {"start": load_average()}}
    try:
        out["runs"] = run_engines(args, root, search_file, run_search, epochs_to_reach)
    finally:
        drop_scratch(root, args.keep)
    out["load_average"]["end"] = load_average()
    print(machine_line(out))
    print(f"Task: efficiency_space.yaml, {' '.join(TASK)} {' '.join(args.overrides)}; {args.trials} trials x up to "
          f"{args.epochs} epochs per search; target = random search's best of the same seed")
    report_engines(out["runs"])
    print(json.dumps(out, default=str))


def report(out: dict[str, Any]) -> None:
    task = out["task"]
    print(machine_line(out))
    extra = " ".join(("--set", *out["overrides"])) if out["overrides"] else ""
    print(f"Task: efficiency_space.yaml (smoke.yaml as of run F), {' '.join(TASK)} {extra}; {task['model']} at "
          f"{task['image_size']} px, batch {task['batch']}, {task['classes']} classes, {task['train_images']} train / "
          f"{task['val_images']} val images; {out['trials']} trials x up to {out['epochs']} epochs per search; "
          f"Ray with {out['ray_cpus']} CPUs (max_concurrent_trials auto); ASHA grace {task['grace_period']}, "
          f"reduction factor {task['reduction_factor']}")
    print(f"  {'seed':<6}{'search':<22}{'epochs':>8}{'best val_acc':>14}{'epochs to best':>16}"
          f"{'to random best':>16}{'wall s':>9}")
    for run in out["runs"]:
        for name, key in (("random, full budget", "random"), ("ASHA + TPE", "asha_tpe")):
            r = run[key]
            to_target = "never" if r["epochs_to_target"] is None else str(r["epochs_to_target"])
            print(f"  {run['seed']:<6}{name:<22}{r['total_epochs']:>8}{r['best_val_acc']:>14.4f}"
                  f"{r['epochs_to_best']:>16}{to_target:>16}{r['wall_s']:>9.1f}")
        average = run["random"]["epochs_to_target_order_averaged"]
        if run["epochs_ratio"] is None:
            print(f"        ASHA+TPE never reached random's best {run['target_val_acc']:.4f}: its best "
                  f"{run['asha_tpe']['best_val_acc']:.4f} after {run['asha_tpe']['total_epochs']} epochs "
                  f"(random, order-averaged: {average} epochs)")
        else:
            print(f"        ASHA+TPE / random epochs to reach {run['target_val_acc']:.4f}: realised "
                  f"{run['epochs_ratio']:.3f}, order-averaged {run['epochs_ratio_order_averaged']:.3f} "
                  f"(random: {average} epochs), {run['epochs_ratio_vs_random_total']:.3f} of random's whole budget")
    several = f"median over {len(out['runs'])} seeds, never = infinite, " if len(out["runs"]) > 1 else ""
    for name, key in (("realised", "epochs_ratio_median"), ("order-averaged", "epochs_ratio_order_averaged_median")):
        ratio = out[key]
        if ratio is None:
            print(f"  ratio, {name} ({several}ASHA+TPE never reached random's best) -> MISSES target <= {TARGET:.2f}")
        else:
            print(f"  ratio, {name} ({several or 'one seed, '}{ratio:.3f}) -> "
                  f"{'meets' if ratio <= TARGET else 'MISSES'} target <= {TARGET:.2f}")
    print("Trial start overhead: first result's time_total_s - epoch_s (net: minus the median validation + "
          "checkpoint cost of later epochs)")
    print(f"  {'trials':<34}{'n':>4}{'median s':>10}{'net s':>8}   each (s)")
    for label, key in (("1 worker", "one_worker"), ("2 workers", "two_worker")):
        groups = out["start_overhead"].get(key)
        if not groups:
            continue
        for process in ("fresh", "reused"):
            if process in groups:
                g = groups[process]
                name = f"{label}, {process} trial process"
                print(f"  {name:<34}{g['trials']:>4}{g['median_s']:>10.2f}{g['median_net_s']:>8.2f}   {g['each_s']}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
