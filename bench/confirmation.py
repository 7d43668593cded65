"""Benchmark: the confirmation stage (docs/how-to/confirmation.md) on the synthetic GTSRB-layout set.

N searches of search_spaces/smoke.yaml (searcher seeds 0..N-1, W&B off, a new local Ray each) with
``confirm: {top_k, seeds}``, through the real runner (``tune.search.run``, which runs the stage after the search).
Per search, from its summary.json: the raw winner (the search's best trial) against the confirmed winner (the best
mean over the seeds), the raw winner's optimism (search score - confirmed mean) and every finalist's, whether the
winner is distinguishable from the runner-up, and the stage's cost (epochs, wall time) against the search's.

Target: confirming the finalists costs less than what Ray Tune offers for seed noise, its ``Repeater`` (every
sampled configuration trained once per seed: ``seeds`` x the search's epochs): (search + stage) epochs <=
seeds x search epochs. The stage against the search alone (epochs, wall time) is reported, not judged: it is
top_k x seeds x trial.epochs, fixed, against a search that grows with num_samples. The rest are the product: how
often the raw winner was not the confirmed one, and how much the search's number flattered it.

    python bench/confirmation.py [--searches 3] [--trials 6] [--epochs 3] [--top-k 2] [--seeds 3] [--set ...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package; train_overhead also puts the repo root on sys.path

from train_overhead import drop_scratch, load_average, machine, machine_line  # noqa: E402

REPO = BENCH.parent
SPACE = REPO / "search_spaces" / "smoke.yaml"
TARGET = 1.0
"""(search + stage) epochs ÷ (seeds x search epochs, Tune's Repeater over the same search), at most."""


def run_search(root: Path, seed: int, args: argparse.Namespace) -> Path:
    """One search with the stage on; its experiment folder."""
    from infra.connect import RayConnection
    from tune import search as search_runner
    from tune.space import load_search_file

    search = load_search_file(SPACE, [
        f"experiment=bench-confirm-{seed}", f"trial.data.root={root / 'signs'}",
        f"trial.data.cache_dir={root / 'cache'}",
        f"searcher.seed={seed}", f"budget.num_samples={args.trials}", f"trial.epochs={args.epochs}",
        f"confirm.top_k={args.top_k}", f"confirm.seeds={args.seeds}", "wandb.enabled=false", *args.overrides])
    connection = RayConnection(address="local", num_cpus=os.cpu_count() or 2)
    try:
        return Path(search_runner.run(search, storage=str(root / "runs"), ray_connection=connection)).parent
    finally:  # run() stops Ray when it finishes; this stops it when run() did not
        import ray

        if ray.is_initialized():
            ray.shutdown()


def figures(experiment: Path) -> dict[str, Any]:
    summary = json.loads((experiment / "summary.json").read_text())
    stage = summary["confirmation"]
    if stage is None or stage["status"] != "finished":
        raise RuntimeError(f"{experiment}: the confirmation stage did not finish")
    raw = summary["best"]["trial_id"]
    by_id = {f["trial_id"]: f for f in stage["finalists"]}
    return {"experiment": str(experiment), "trials": summary["num_trials"], "search_epochs": summary["total_epochs"],
            "search_wall_s": round(summary["wall_s"], 1), "stage_epochs": stage["total_epochs"],
            "stage_wall_s": round(stage["wall_s"], 1), "raw_winner": raw, "confirmed_winner": stage["winner"],
            "raw_winner_confirmed": stage["raw_winner_confirmed"], "distinguishable": stage["distinguishable"],
            "raw_search_score": by_id[raw]["search_score"], "raw_confirmed_mean": by_id[raw]["val"]["mean"],
            "raw_optimism": by_id[raw]["optimism"],
            "optimism": [f["optimism"] for f in stage["finalists"]],
            "winner_test": (by_id[stage["winner"]]["test"] or {}).get("mean"),
            "raw_test": (by_id[raw]["test"] or {}).get("mean")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=3, help="searches (searcher seeds 0..N-1)")
    parser.add_argument("--trials", type=int, default=6, help="budget.num_samples per search")
    parser.add_argument("--epochs", type=int, default=3, help="trial.epochs (search trials and confirmation runs)")
    parser.add_argument("--top-k", type=int, default=2, help="confirm.top_k")
    parser.add_argument("--seeds", type=int, default=3, help="confirm.seeds")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="more overrides for every search")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "bench/confirmation.py", "machine": machine(),
                           "settings": {k: v for k, v in vars(args).items() if k != "keep"},
                           "load_average": {"start": load_average()},
                           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                    capture_output=True, text=True).stdout.strip()}
    root = Path(tempfile.mkdtemp(prefix="bench-confirm-"))
    try:
        out["runs"] = [figures(run_search(root, seed, args)) for seed in range(args.searches)]
    finally:
        drop_scratch(root, args.keep)
    out["load_average"]["end"] = load_average()
    report(out)


def report(out: dict[str, Any]) -> None:
    runs, s = out["runs"], out["settings"]
    print(machine_line({**out, "load_average": out["load_average"]["end"]}))
    print(f"Space: smoke.yaml, {s['trials']} trials x {s['epochs']} epochs (ASHA), confirm top_k={s['top_k']} x "
          f"seeds={s['seeds']} {' '.join(s['overrides'])}")
    print(f"  {'search':<8}{'raw':>10}{'confirmed':>11}{'same':>6}{'distinct':>10}{'raw score':>11}{'its mean':>10}"
          f"{'optimism':>10}{'ep search/stage':>17}{'wall s search/stage':>21}")
    for i, r in enumerate(runs):
        same = "yes" if r["raw_winner_confirmed"] else "NO"
        print(f"  {i:<8}{r['raw_winner']:>10}{r['confirmed_winner']:>11}{same:>6}"
              f"{str(r['distinguishable']):>10}{r['raw_search_score']:>11.4f}{r['raw_confirmed_mean']:>10.4f}"
              f"{r['raw_optimism']:>+10.4f}{r['search_epochs']:>9}/{r['stage_epochs']:<7}"
              f"{r['search_wall_s']:>12.0f}/{r['stage_wall_s']:<8.0f}")
    flipped = sum(not r["raw_winner_confirmed"] for r in runs)
    every = [o for r in runs for o in r["optimism"] if o is not None]
    epochs = sum(r["stage_epochs"] for r in runs) / sum(r["search_epochs"] for r in runs)
    wall = sum(r["stage_wall_s"] for r in runs) / sum(r["search_wall_s"] for r in runs)
    summary = {"raw_not_confirmed": flipped, "searches": len(runs),
               "mean_raw_optimism": round(statistics.mean(r["raw_optimism"] for r in runs), 4),
               "mean_finalist_optimism": round(statistics.mean(every), 4) if every else None,
               "stage_over_search_epochs": round(epochs, 3), "stage_over_search_wall": round(wall, 3)}
    out["summary"] = summary
    print(f"  raw winner not the confirmed winner in {flipped} of {len(runs)} searches; mean optimism of the raw "
          f"winner {summary['mean_raw_optimism']:+.4f}, of every finalist {summary['mean_finalist_optimism']:+.4f}")
    searched = sum(r["search_epochs"] for r in runs)
    repeater = (searched + sum(r["stage_epochs"] for r in runs)) / (s["seeds"] * searched)
    summary["against_repeater_epochs"] = round(repeater, 3)
    print(f"  stage / search: {epochs:.2f} in epochs, {wall:.2f} in wall time (top_k x seeds x trial.epochs = "
          f"{s['top_k'] * s['seeds'] * s['epochs']} epochs a search)")
    verdict = "meets" if repeater <= TARGET else "MISSES"
    print(f"  (search + stage) / (seeds x search) epochs, against Tune's Repeater: {repeater:.2f} -> {verdict} "
          f"target <= {TARGET:.2f}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
