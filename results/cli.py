"""``signsearch``: one command for every stage, each subcommand the same CLI as its script.

    signsearch search --config search_spaces/smoke.yaml      # = python tune/run_search.py --config ...
    signsearch export runs/smoke-<time> --out models/best    # = python results/export.py ...

A subcommand hands the rest of the command line to its script's ``main(argv)``: the same flags, output and exit
codes. Its module is imported only when it runs, so ``signsearch --help`` starts in a fraction of a second and
never loads torch or Ray. It lives on the top floor (results/) because it reaches every floor below.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Iterator, NamedTuple


class Command(NamedTuple):
    module: str
    """The module whose ``main(argv)`` runs it."""
    script: str
    """How it runs without the ``signsearch`` command."""
    summary: str


COMMANDS: dict[str, Command] = {
    "search": Command("tune.run_search", "python tune/run_search.py",
                      "search hyperparameters over a search file (Ray Tune, Optuna, ASHA)"),
    "train": Command("train.train_model", "python train/train_model.py",
                     "train one trial config (best_config.yaml) outside a search"),
    "analyze": Command("results.analyze", "python results/analyze.py",
                       "report on a search: leaderboard, plots, report.html"),
    "evaluate": Command("results.evaluate", "python results/evaluate.py",
                        "a checkpoint on the test split: per-class accuracy, confusions"),
    "compare": Command("results.compare", "python results/compare.py",
                       "searches side by side (e.g. TPE against W&B's engine): compare.html"),
    "export": Command("results.export", "python results/export.py",
                      "the best trial (or a Pareto point) as ONNX, TorchScript, model.json"),
    "predict": Command("results.predict", "python results/predict.py",
                       "classify images with an exported model (onnxruntime only)"),
    "serve": Command("results.serve", "python results/serve.py",
                     "serve an exported model over HTTP with Ray Serve"),
    "sweep": Command("tune.sweep.__main__", "python -m tune.sweep",
                     "W&B Sweeps: a search file as a sweep config; an agent's trial"),
}

def package_version() -> str:
    try:
        return version("signsearch")
    except PackageNotFoundError:  # a checkout on PYTHONPATH that was never installed
        return "unknown (not installed: make installs it)"


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: signsearch COMMAND [ARGS ...]", "       signsearch COMMAND --help | --version", "",
             "Distributed hyperparameter search for image classifiers on Ray.", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Each command is the same CLI as its script: signsearch search is",
              "python tune/run_search.py. Documentation: make docs, then open site/index.html."]
    return "\n".join(lines)


@contextlib.contextmanager
def _prog(name: str) -> Iterator[None]:
    """Scripts build their parsers with argparse's default prog, the basename of sys.argv[0]: name the subcommand
    there so that its usage and error lines say `signsearch search`, not `signsearch`."""
    saved = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = name
    else:
        sys.argv.append(name)
    try:
        yield
    finally:
        sys.argv[0] = saved


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    first, rest = args[0], args[1:]
    if first in ("-h", "--help", "help"):
        print(usage())
        return 0
    if first == "--version":
        print(f"signsearch {package_version()}")
        return 0
    command = COMMANDS.get(first)
    if command is None:
        print(f"signsearch: unknown command {first!r}; commands: {', '.join(COMMANDS)} "
              "(signsearch --help says what each does)", file=sys.stderr)
        return 2
    run = importlib.import_module(command.module).main
    with _prog(f"signsearch {first}"):
        try:
            code = run(rest)
        except SystemExit as stop:  # argparse's --help (0) and usage errors (2), sys.exit() in a script
            code = stop.code
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)  # sys.exit("message"): what Python prints and exits 1 with
    return 1


if __name__ == "__main__":
    sys.exit(main())
