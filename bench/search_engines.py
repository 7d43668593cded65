"""bench/search_efficiency.py --engines: the same task, space, budget and seeds searched by each engine.

Engines (``ENGINES``): random search at full budget, Optuna TPE + ASHA, W&B bayes + W&B hyperband and W&B bayes +
ASHA, each through the real runner (tune.search.run on a new local Ray). Per engine and seed: trials, epochs
trained, best val_acc, epochs to its own best, epochs (and seconds) to reach the target (the best val_acc random
search found with that seed: the baseline every engine is measured against), and the trials' wall time. No engine
is expected to win: the figures are the product.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any, Callable, Optional

ENGINES: dict[str, tuple[str, ...]] = {
    "random": ("budget.early_stopping=false", "searcher.algorithm=random"),
    "tpe+asha": (),
    "wandb_bayes+wandb_hyperband": ("searcher.algorithm=wandb_bayes", "budget.scheduler=wandb_hyperband"),
    "wandb_bayes+asha": ("searcher.algorithm=wandb_bayes",),
}


def seconds_to_reach(rows: list[dict[str, Any]], target: float) -> Optional[float]:
    """Seconds from the search's first trial start until an epoch first reached ``target`` (rows in completion
    order)."""
    start = min(row["trial_start"] for row in rows)
    for row in rows:
        if row["val_acc"] >= target - 1e-12:
            return round(row["done_at"] - start, 1)
    return None


def run_engines(args: argparse.Namespace, root: Path, search_file: Callable, run_search: Callable,
                epochs_to_reach: Callable) -> list[dict[str, Any]]:
    """Every engine of ``args.engines`` for every seed; one dict per (seed, engine)."""
    out = []
    for seed in args.seeds:
        results = {}
        for engine in args.engines:
            name = f"{engine.replace('+', '-')}-s{seed}"
            results[engine] = run_search(search_file(root, name, args, seed, *ENGINES[engine]), root)
        baseline = "random" if "random" in results else args.engines[0]
        target = max(row["val_acc"] for row in results[baseline]["rows"])
        for engine, result in results.items():
            rows = result["rows"]
            best = max(row["val_acc"] for row in rows)
            out.append({"seed": seed, "engine": engine, "trials": result["summary"]["num_trials"],
                        "epochs": len(rows), "best_val_acc": best, "epochs_to_best": epochs_to_reach(rows, best),
                        "target_val_acc": target, "target_from": baseline,
                        "epochs_to_target": epochs_to_reach(rows, target),
                        "seconds_to_target": seconds_to_reach(rows, target), "wall_s": result["wall_s"]})
    return out


def report_engines(runs: list[dict[str, Any]]) -> None:
    print(f"  {'seed':<6}{'engine':<30}{'trials':>7}{'epochs':>8}{'best val_acc':>14}{'ep. to best':>13}"
          f"{'ep. to target':>15}{'s to target':>13}{'wall s':>9}")
    for r in runs:
        to_target = "never" if r["epochs_to_target"] is None else str(r["epochs_to_target"])
        seconds = "never" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.0f}"
        print(f"  {r['seed']:<6}{r['engine']:<30}{r['trials']:>7}{r['epochs']:>8}{r['best_val_acc']:>14.4f}"
              f"{r['epochs_to_best']:>13}{to_target:>15}{seconds:>13}{r['wall_s']:>9.1f}")
    for engine in dict.fromkeys(r["engine"] for r in runs):
        mine = [r for r in runs if r["engine"] == engine]
        best = statistics.median(r['best_val_acc'] for r in mine)
        print(f"  median over {len(mine)} seed(s), {engine}: best {best:.4f}, "
              f"epochs {statistics.median(r['epochs'] for r in mine):g}, "
              f"wall {statistics.median(r['wall_s'] for r in mine):.0f} s")
