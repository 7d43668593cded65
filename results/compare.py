"""Compare searches of one task side by side: engine, trials, epochs, wall time, best metric and its test accuracy,
best-so-far against epochs and against time, and what each needed to reach the others' best.

    python results/compare.py runs/smoke-<time> runs/smoke-<time> ... [--out DIR] [--no-evaluate]

Writes DIR/compare.html (default ./compare/); the last line printed is its path. Experiments of different data or
metrics do not compare: one line on stderr, exit 2, nothing written. Each best trial's test accuracy comes from
evaluation-test.json beside its checkpoint, evaluated now when missing (unless --no-evaluate).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+", help="experiment folders run_search.py made (paths or URIs)")
    parser.add_argument("--out", help="folder for compare.html and its plots (default: ./compare)")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="do not evaluate a best checkpoint that has no evaluation-test.json yet")
    args = parser.parse_args(argv)
    from results.comparison.build import build
    from train.config import ConfigError
    from train.data import DataError

    try:
        with tempfile.TemporaryDirectory(prefix="signsearch-compare-") as scratch:
            path = build(args.experiments, args.out, not args.no_evaluate, Path(scratch))
    except (ConfigError, DataError) as error:  # ExperimentError is a ConfigError
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
