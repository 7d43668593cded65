"""Regenerate the documentation's pictures from a real run: never edit them by hand.

    .venv/bin/python docs/pictures.py        # ~5 min on 2 cores; writes docs/img/*.png

Two small searches of the synthetic accuracy-against-latency space (search_spaces/smoke_pareto.yaml, fewer trials
and epochs than it ships with): multi-objective TPE + ASHA, and random search without early stopping over the same
space. Then the report of the first (results/analyze.py), both compared (results/compare.py), and headless
Chromium's screenshots of report.html and compare.html. Everything runs in a temp folder with a private Ray; only
the PNGs land in docs/img/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMG = REPO / "docs" / "img"
SPACE = REPO / "search_spaces" / "smoke_pareto.yaml"
SMALL = ["trial.epochs=3", "budget.grace_period=1", "wandb.enabled=false"]


def run(args: list[str], cwd: Path) -> str:
    print("+", " ".join(args), flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout.strip().splitlines()[-1]


def search(work: Path, name: str, samples: int, extra: list[str]) -> Path:
    summary = run([sys.executable, str(REPO / "tune" / "run_search.py"), "--config", str(SPACE),
                   "--storage", str(work / "runs"), "--address", "local", "--num-cpus", "2",
                   "--num-samples", str(samples), "--set", f"experiment={name}", *SMALL, *extra], work)
    return Path(summary).parent


def screenshot(page: Path, out: Path, height: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("docs/pictures.py: no chromium on PATH (apt-get install chromium) for the page screenshots")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={out}", f"--window-size=1280,{height}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8, help="trials per search (default: 8)")
    args = parser.parse_args(argv)
    IMG.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="signsearch-pictures-") as tmp:
        work = Path(tmp)
        tpe = search(work, "pareto_tpe", args.samples, [])
        rand = search(work, "pareto_random", args.samples,
                      ["searcher.algorithm=random", "budget.early_stopping=false"])
        report = Path(run([sys.executable, str(REPO / "results" / "analyze.py"), str(tpe), "--no-wandb",
                           "--baseline", str(rand)], work))
        compare = Path(run([sys.executable, str(REPO / "results" / "compare.py"), str(tpe), str(rand),
                            "--out", str(work / "compare")], work))
        for name in ("pareto.png", "learning_curves.png"):
            shutil.copyfile(report.parent / name, IMG / name)
        screenshot(report, IMG / "report.png", 1400)
        screenshot(compare, IMG / "compare.png", 1100)
    for png in sorted(IMG.glob("*.png")):
        print(f"{png.relative_to(REPO)}  {png.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
