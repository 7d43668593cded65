"""Evaluate a search's best checkpoint (or any checkpoint) on the held-out test split.

    python results/evaluate.py runs/smoke-<time>                 # the best trial of that search
    python results/evaluate.py runs/smoke-<time>/trial_x/checkpoint_000003 --split val [--out DIR]

Writes ``evaluation-<split>.json`` (accuracy, per-class accuracy sorted worst first, confusion matrix,
most frequent confusions) and ``confusion-<split>.png`` into the checkpoint folder, or into ``--out``
(created if missing), prints the per-class table and, last, the JSON's path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment folder (uses its best trial) or checkpoint folder")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--out", type=Path, help="folder for the JSON and PNG (default: the checkpoint folder)")
    args = parser.parse_args(argv)
    from results.checkpoints import resolve_checkpoint
    from results.report.evaluation import evaluate, write_outputs
    from train.config import ConfigError
    from train.data import DataError

    try:
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise ConfigError(f"--out {args.out}: exists and is not a folder")
        checkpoint = resolve_checkpoint(args.path)
        result = evaluate(checkpoint, args.split)
        try:
            out, picture = write_outputs(result, args.out or checkpoint)
        except OSError as error:
            raise ConfigError(f"{error.filename or args.out or checkpoint}: cannot write the evaluation "
                              f"({error.strerror or error})") from None
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.split} accuracy {result['accuracy']:.4f} on {result['images']} images ({checkpoint})")
    print("per-class accuracy, worst first:")
    for row in result["per_class_accuracy"]:
        accuracy = "   n/a" if row["accuracy"] is None else f"{row['accuracy']:6.3f}"
        print(f"  {accuracy}  {row['images']:5d} images  {row['index']:3d} {row['class']}")
    if result["top_confusions"]:
        print("most frequent confusions (true -> predicted):")
    for row in result["top_confusions"][:5]:
        print(f"  {row['count']:4d} x {row['true']} -> {row['predicted']}")
    print(picture)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
