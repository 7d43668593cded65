"""Benchmark: the accuracy/latency search on search_spaces/smoke_pareto.yaml against a random multi-objective search.

For each seed, two searches with the real runner (``tune.search.run``, W&B off, a new local Ray each):

* **MO-TPE + ASHA**: smoke_pareto.yaml as shipped (multi-objective TPE, ASHA on val_acc);
* **random**: ``searcher.algorithm=random`` and ``budget.early_stopping=false``, the same number of trials.

Figures: how many trials reach the Pareto front (summary.json ``front``), and the **hypervolume** of the front
against the epochs spent to get it: objectives as minimised (1 - val_acc, latency_ms / the slowest architecture's),
reference point (1, 1.1) — no trial can be worse than 0 accuracy or slower than the slowest architecture — and the
2-D hypervolume of the finished trials' front after each trial finishes, in completion order (a 2-D hypervolume is
the area under a staircase: ten lines here, where Optuna's own implementation is private). Reported: the final
hypervolume, the epochs spent, their ratio, and the hypervolume each search had after as many epochs as the
cheaper one spent in total (equal budget).

Then the **latency record**: the first seed's MO-TPE front points best and fastest are exported with
``results/export.py --pick`` and timed again with ``results/predict.py``'s benchmark function on this machine;
**target: the fresh median within 15 % of the recorded latency_ms**.

    python bench/pareto.py [--seeds 0 1 2] [--set budget.num_samples=12 ...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package; train_overhead also puts the repo root on sys.path

from train_overhead import drop_scratch, load_average, machine, machine_line  # noqa: E402

REPO = BENCH.parent
SPACE = REPO / "search_spaces" / "smoke_pareto.yaml"
TARGET = 0.15
REFERENCE = (1.0, 1.1)
"""Hypervolume reference point: (1 - val_acc, latency / slowest architecture's)."""


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by ``points`` (both minimised) below REFERENCE."""
    area, best_y = 0.0, REFERENCE[1]
    for x, y in sorted(p for p in points if p[0] < REFERENCE[0] and p[1] < REFERENCE[1]):
        if y < best_y:
            area += (REFERENCE[0] - x) * (best_y - y)
            best_y = y
    return area


def run_search(root: Path, name: str, seed: int, overrides: list[str], *extra: str) -> Path:
    from infra.connect import RayConnection
    from tune import search as search_runner
    from tune.space import load_search_file

    search = load_search_file(SPACE, [f"experiment=bench-{name}", f"trial.data.root={root / 'signs'}",
                                      f"trial.data.cache_dir={root / 'cache'}", f"searcher.seed={seed}",
                                      "wandb.enabled=false", *overrides, *extra])
    connection = RayConnection(address="local", num_cpus=os.cpu_count() or 2)
    try:
        return Path(search_runner.run(search, storage=str(root / "runs"), ray_connection=connection)).parent
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def figures(experiment: Path) -> dict[str, Any]:
    """Front size, epochs, and the hypervolume after each trial's end (completion order)."""
    summary = json.loads((experiment / "summary.json").read_text())
    slowest = max(e["latency_ms"] for e in json.loads((experiment / "latency.json").read_text()).values())
    ends = []
    for trial in summary["trials"]:
        rows = [json.loads(line) for line in (experiment / trial["path"] / "result.json").read_text().splitlines()]
        end = max(row["timestamp"] - row["time_total_s"] for row in rows) + rows[-1]["time_total_s"]
        ends.append((end, trial))
    spent, curve, points = 0, [], []
    for _, trial in sorted(ends, key=lambda pair: pair[0]):
        spent += trial["epochs"]
        if trial["epochs"] == summary["epochs"]:  # finished trials only: ASHA-stopped ones are never on the front
            m = trial["metrics"]
            points.append((1.0 - m["val_acc"], m["latency_ms"] / slowest))
        curve.append((spent, hypervolume(points)))
    return {"experiment": str(experiment), "trials": summary["num_trials"], "front": len(summary["front"]),
            "epochs": spent, "hypervolume": curve[-1][1], "curve": curve}


def at_epochs(curve: list[tuple[int, float]], epochs: int) -> float:
    return max((hv for spent, hv in curve if spent <= epochs), default=0.0)


def latency_check(experiment: Path, root: Path) -> list[dict[str, Any]]:
    from artifact.latency import measure
    from results.export import main as export

    out = []
    for how in ("fastest", "best"):
        folder = root / f"model-{how}"
        if export([str(experiment), "--out", str(folder), "--pick", how]) != 0:
            raise RuntimeError(f"export --pick {how} failed")
        meta = json.loads((folder / "model.json").read_text())
        recorded, how_measured = meta["latency"]["latency_ms"], meta["latency"]["settings"]
        size = meta["input"]["width"]
        fresh = measure(folder / "model.onnx", (how_measured["batch_size"], 3, size, size),
                        threads=how_measured["threads"], provider=how_measured["execution_provider"],
                        warmup=how_measured["warmup"], repeats=how_measured["repeats"],
                        rounds=how_measured["rounds"])["latency_ms"]
        out.append({"pick": how, "trial": meta["source"]["trial_id"], "model": meta["model"]["name"],
                    "image_size": size, "recorded_ms": recorded, "fresh_ms": fresh,
                    "deviation": round(abs(fresh - recorded) / recorded, 4)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="overrides for both searches")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    import subprocess

    out: dict[str, Any] = {"benchmark": "bench/pareto.py", "machine": machine(), "seeds": args.seeds,
                           "overrides": args.overrides, "load_average": {"start": load_average()},
                           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                    capture_output=True, text=True).stdout.strip()}
    root = Path(tempfile.mkdtemp(prefix="bench-pareto-"))
    try:
        runs = []
        for seed in args.seeds:
            tpe = figures(run_search(root, f"tpe-{seed}", seed, args.overrides))
            rnd = figures(run_search(root, f"random-{seed}", seed, args.overrides, "searcher.algorithm=random",
                                     "budget.early_stopping=false"))
            equal = min(tpe["epochs"], rnd["epochs"])
            runs.append({"seed": seed, "tpe": tpe, "random": rnd, "equal_epochs": equal,
                         "tpe_hv_at_equal": at_epochs(tpe["curve"], equal),
                         "random_hv_at_equal": at_epochs(rnd["curve"], equal)})
        out["runs"] = runs
        out["latency"] = latency_check(Path(runs[0]["tpe"]["experiment"]), root)
    finally:
        drop_scratch(root, args.keep)
    out["load_average"]["end"] = load_average()
    report(out)


def report(out: dict[str, Any]) -> None:
    print(machine_line({**out, "load_average": out["load_average"]["end"]}))
    print(f"Space: smoke_pareto.yaml {' '.join(out['overrides'])}; hypervolume of (1 - val_acc, latency / slowest) "
          f"below reference {REFERENCE}")
    print(f"  {'seed':<6}{'search':<16}{'trials':>7}{'front':>7}{'epochs':>8}{'HV':>8}{'HV/100 ep':>11}"
          f"{'HV at equal epochs':>20}")
    for run in out["runs"]:
        for name, key, at in (("MO-TPE + ASHA", "tpe", "tpe_hv_at_equal"), ("random", "random", "random_hv_at_equal")):
            r = run[key]
            print(f"  {run['seed']:<6}{name:<16}{r['trials']:>7}{r['front']:>7}{r['epochs']:>8}{r['hypervolume']:>8.4f}"
                  f"{100 * r['hypervolume'] / r['epochs']:>11.4f}{run[at]:>14.4f} @ {run['equal_epochs']}")
    wins = sum(run["tpe_hv_at_equal"] >= run["random_hv_at_equal"] for run in out["runs"])
    print(f"  MO-TPE + ASHA's hypervolume at equal epochs >= random's in {wins} of {len(out['runs'])} seeds")
    print("Recorded latency_ms against a fresh measurement of the exported model (same machine, same settings):")
    for check in out["latency"]:
        verdict = "meets" if check["deviation"] <= TARGET else "MISSES"
        print(f"  --pick {check['pick']:<8} trial {check['trial']} ({check['model']}, {check['image_size']} px): "
              f"recorded {check['recorded_ms']:.4f} ms, fresh {check['fresh_ms']:.4f} ms, deviation "
              f"{check['deviation']:.1%} -> {verdict} target <= {TARGET:.0%}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
