"""Compare searches of one task side by side: engine, trials, epochs, wall time, best metric and its test accuracy,
best-so-far against epochs and against time, and what each needed to reach the others' best; per engine over its
searches (seeds): the median and spread of the best-so-far curves, the expected best against the number of trials
from its pooled trials (Dodge et al. 2019), and the epochs it needed to reach the other engines' median best.

    python results/compare.py runs/smoke-<time> runs/smoke-<time> ... [--out DIR] [--no-evaluate]
    python results/compare.py A1 A2 A3 -- B1 B2 B3 [--out DIR]     # groups as given (else: by recorded engine)

Writes DIR/compare.html (default ./compare/); the last line printed is its path. Experiments of different data or
metrics do not compare: one line on stderr, exit 2, nothing written. Each best trial's test accuracy comes from
evaluation-test.json beside its checkpoint, evaluated now when missing (unless --no-evaluate). The same experiment
given twice is refused (one line, exit 2); an interrupted or stalled search is marked UNFINISHED on the page and by a
warning: line on stderr (its budget is not the others').
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_SEPARATOR = "\0--"  # no path holds a NUL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+",
                        help="experiment folders run_search.py made (paths or URIs); '--' between groups (engines)")
    parser.add_argument("--out", help="folder for compare.html and its plots (default: ./compare)")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="do not evaluate a best checkpoint that has no evaluation-test.json yet")
    argv = list(sys.argv[1:] if argv is None else argv)
    # '--' separates groups: kept as a positional of its own (argparse would drop it) and split on below.
    args = parser.parse_intermixed_args([_SEPARATOR if arg == "--" else arg for arg in argv])
    sizes, size = [], 0
    for location in args.experiments:
        if location == _SEPARATOR:
            sizes.append(size)
            size = 0
        else:
            size += 1
    sizes.append(size)
    locations = [location for location in args.experiments if location != _SEPARATOR]
    from results.comparison.build import build
    from train.config import ConfigError
    from train.data import DataError

    try:
        with tempfile.TemporaryDirectory(prefix="signsearch-compare-") as scratch:
            path, lines, warnings = build(locations, args.out, not args.no_evaluate, Path(scratch),
                                          sizes if len(sizes) > 1 else None)
    except (ConfigError, DataError) as error:  # ExperimentError is a ConfigError
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in warnings:
        print(line, file=sys.stderr)
    print("\n".join(lines))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
