"""Report on a finished search: leaderboard, plots, report.md and one self-contained report.html.

    python results/analyze.py runs/smoke-<time> [--out DIR] [--baseline OTHER_EXPERIMENT ...]
    python results/analyze.py s3://bucket/prefix/smoke-<time>      # any storage the search can write to

Writes ``report/`` into the experiment (or ``--out``): learning curves with ASHA's rungs, best metric vs
epochs spent (against each ``--baseline`` experiment, e.g. a random search of the same space), parameter
importance (fANOVA), parallel coordinates, metric vs each parameter, categorical choices (model name,
pretrained vs scratch) and the best trial's test confusion matrix (from ``evaluation-test.json`` beside
its checkpoint; evaluated now when missing, unless ``--no-evaluate``). With W&B on in the search, the
same goes to a report run in the experiment's W&B group. Prints the top-10 leaderboard; the last line
is the path of report.html.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="experiment folder run_search.py made (a path or s3:// gs:// file:// URI)")
    parser.add_argument("--out", help="report folder (default: <experiment>/report)")
    parser.add_argument("--baseline", action="append", default=[], metavar="EXPERIMENT",
                        help="another experiment to compare search efficiency with (e.g. a random search); repeatable")
    parser.add_argument("--top", type=int, default=10, help="leaderboard rows (default 10)")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="do not evaluate the best checkpoint when it has no evaluation-test.json yet")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the report to W&B")
    args = parser.parse_args(argv)
    from results.report.build import build
    from train.config import ConfigError
    from train.data import DataError
    from tune.experiment.records import ExperimentError

    try:
        with tempfile.TemporaryDirectory(prefix="signsearch-report-") as scratch:
            html_path, lines = build(args, Path(scratch))
    except (ExperimentError, ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(html_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
